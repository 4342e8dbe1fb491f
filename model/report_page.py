"""``report.html``: one self-contained page for screen QC (no network: it is mailed around and opened offline).

The plate maps are SVG drawn here, one per plate and channel, each well split into its
sites and coloured on the overlay's scale (:func:`model.overlay.level_color`) by the
expected level; a small script shows a well's images when it is pointed at or clicked
(also from the address: ``report.html#<plate>|<channel>|<well>``). The worst images are
embedded as small JPEG thumbnails; the other images' annotated PNGs are linked, and load
only when their well is shown.
"""
import base64
import html
import io
import json
import math
import os
from pathlib import Path

from .overlay import level_color_8bit
from .plate_layout import PLATE_FORMATS, row_letters

#: Side of a well on the map, in pixels, by plate format.
WELL_SIDE = {96: 34, 384: 20, 1536: 11}
THUMBNAIL_SIDE = 220
NOTHING_TO_JUDGE = "#8a8a8a"
ERROR = "#5a1010"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f4f4f4}
main{margin-right:380px;padding:16px 24px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px}
.verdict{font-size:16px;margin:4px 0} .verdict.bad{color:#a00;font-weight:600} .verdict.good{color:#060}
table.counts td{padding:1px 10px 1px 0} .plate{background:#1c1c1c;display:inline-block;padding:6px;border-radius:4px}
.plate text{fill:#ccc;font-size:10px} g.well{cursor:pointer} g.well.selected>rect.frame{stroke:#fff;stroke-width:3}
aside{position:fixed;right:0;top:0;bottom:0;width:360px;overflow:auto;background:#fff;border-left:1px solid #ccc;
padding:12px;box-sizing:border-box} aside img{max-width:100%;display:block;margin:4px 0 10px}
.legend span{display:inline-block;min-width:22px;text-align:center;color:#000;font-size:11px;margin-right:1px}
.gallery figure{display:inline-block;margin:4px;width:230px;vertical-align:top;font-size:12px}
.gallery img{width:220px;display:block} .small{font-size:12px;color:#555} #js-errors{color:#a00}
rect.site{stroke:#000;stroke-width:.6}
"""

SCRIPT = """
window.onerror = function (message) {
  document.getElementById('js-errors').textContent += 'JavaScript error: ' + message + '\\n';
};
const data = JSON.parse(document.getElementById('report-data').textContent);
const escapeHtml = s => String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
function showWell(key) {
  const well = data.wells[key];
  if (!well) return;
  document.querySelectorAll('g.well.selected').forEach(g => g.classList.remove('selected'));
  const g = document.querySelector('g.well[data-key="' + CSS.escape(key) + '"]');
  if (g) g.classList.add('selected');
  let text = '<h2>' + escapeHtml(well.title) + '</h2><p>' + escapeHtml(well.summary) + '</p>';
  for (const [site, level, expected, inFocus, name, png, error] of well.images) {
    text += '<div><b>site ' + escapeHtml(site || '-') + '</b>: ' + (error ? 'error: ' + escapeHtml(error)
      : (expected === null ? 'nothing to judge' : 'level ' + level + ' (expected ' + expected.toFixed(2) + '), '
         + (inFocus ? 'in focus' : '<b>out of focus</b>'))) + '<br><span class="small">' + escapeHtml(name) + '</span>';
    if (png) text += '<img loading="lazy" alt="" src="' + escapeHtml(png) + '">';
    text += '</div>';
  }
  document.getElementById('well-panel').innerHTML = text;
}
// Each imaged site as a small square inside its well (drawn here: a screen has 100,000 of them).
document.querySelectorAll('g.well[data-key]').forEach(g => {
  const images = data.wells[g.dataset.key].images, frame = g.querySelector('rect.frame');
  const side = +frame.getAttribute('width') + 2, x = +frame.getAttribute('x') + 2, y = +frame.getAttribute('y') + 2;
  if (images.length < 2 || side < 16) return;
  const perRow = Math.ceil(Math.sqrt(images.length)), inner = (side - 6) / perRow;
  images.forEach((image, i) => {
    const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    r.setAttribute('class', 'site'); r.setAttribute('fill', image[7]);
    r.setAttribute('x', (x + (i % perRow) * inner).toFixed(1)); r.setAttribute('y', (y + Math.floor(i / perRow) * inner).toFixed(1));
    r.setAttribute('width', (inner - 1).toFixed(1)); r.setAttribute('height', (inner - 1).toFixed(1));
    g.appendChild(r);
  });
});
document.querySelectorAll('g.well[data-key]').forEach(g => {
  g.addEventListener('click', () => { showWell(g.dataset.key); history.replaceState(null, '', '#' + encodeURIComponent(g.dataset.key)); });
  g.addEventListener('mouseenter', () => showWell(g.dataset.key));
});
if (location.hash.length > 1) showWell(decodeURIComponent(location.hash.slice(1)));
document.body.dataset.ready = 'yes';
"""


def render(screen, output, worst=24):
    """The page for :class:`model.screen_report.Screen` ``screen``, whose files are linked relative to ``output``."""
    output = Path(output)
    wells = {}
    maps = []
    for plate in screen.plates:
        maps.append(_plate_section(plate))
        for well in plate.ordered_wells():
            wells[_key(well)] = _well_data(well, output)
    counts = screen.counts()
    parts = [f"<h1>Focus quality: {html.escape(screen.source)}</h1>", _verdicts(screen),
             '<pre id="js-errors"></pre>',
             '<table class="counts">' + "".join(f"<tr><td>{html.escape(k)}</td><td><b>{v}</b></td></tr>"
                                               for k, v in counts.items()) + "</table>",
             _legend(), *maps, "<h2>Levels of all images</h2>", _histogram(screen.level_histogram(), counts),
             _gallery(screen, worst), _listing("Files whose names match no plate pattern", screen.unplaced),
             _listing("Files that could not be assessed", [r for r in screen.images if r.error], errors=True)]
    payload = json.dumps({"wells": wells}, separators=(",", ":")).replace("</", "<\\/")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>Focus QC</title><style>{STYLE}</style></head><body><main>{''.join(parts)}</main>"
            '<aside id="well-panel"><p>Point at or click a well to see its images.</p></aside>'
            f'<script type="application/json" id="report-data">{payload}</script>'
            f"<script>{SCRIPT}</script></body></html>")


def _key(well):
    return f"{well.plate}|{well.channel}|{well.name}"


def plate_title(plate):
    """"Plate P3, channel 2" (no second "Plate" when the plate's own name starts with it)."""
    name = plate.plate if plate.plate.lower().startswith("plate") else f"Plate {plate.plate}"
    return name + (f", channel {plate.channel}" if plate.channel else "")


def _verdicts(screen):
    lines = []
    for plate in screen.plates:
        lost = plate.lost_wells
        to_redo = sum(len([r for r in w.images if r.to_reimage]) for w in plate.ordered_wells())
        name = plate_title(plate)
        if lost:
            listed = ", ".join(w.name for w in lost[:30]) + (f" and {len(lost) - 30} more" if len(lost) > 30 else "")
            text = (f"{name}: well{'s' if len(lost) > 1 else ''} {listed} out of focus; "
                    f"{to_redo} image{'s' if to_redo != 1 else ''} to re-image")
        else:
            text = f"{name}: every well in focus" + (f" ({to_redo} single images out of focus)" if to_redo else "")
        lines.append(f'<p class="verdict {"bad" if lost else "good"}">{html.escape(text)}</p>')
    total = len(screen.to_reimage)
    lines.append(f'<p class="small">{total} image{"s" if total != 1 else ""} to re-image in all: '
                 'out_of_focus.txt lists them; wells.csv has every well.</p>')
    return "".join(lines)


def _colour(expected):
    return "#%02x%02x%02x" % level_color_8bit(min(max(expected, 0.0), 10.0))


def _plate_section(plate):
    size = plate.size
    n_rows, n_columns = PLATE_FORMATS[size]
    side = WELL_SIDE[size]
    left, top = 22, 14
    svg = [f'<svg class="plate-map" data-plate="{html.escape(plate.plate)}" data-channel="{html.escape(plate.channel)}" '
           f'width="{left + n_columns * side + 4}" height="{top + n_rows * side + 4}">']
    for c in range(1, n_columns + 1):
        if size < 1536 or c % 4 == 1:
            svg.append(f'<text x="{left + (c - 0.5) * side}" y="10" text-anchor="middle">{c}</text>')
    for r in range(1, n_rows + 1):
        if size < 1536 or r % 2 == 1:
            svg.append(f'<text x="2" y="{top + (r - 0.5) * side + 4}">{row_letters(r)}</text>')
    for r in range(1, n_rows + 1):
        for c in range(1, n_columns + 1):
            x, y = left + (c - 1) * side, top + (r - 1) * side
            well = plate.wells.get((r, c))
            if well is None:
                svg.append(f'<rect class="empty-well" x="{x + 1}" y="{y + 1}" width="{side - 2}" height="{side - 2}" '
                           'fill="none" stroke="#555"/>')
                continue
            svg.append(_well_svg(well, x, y, side))
    svg.append("</svg>")
    title = plate_title(plate)
    lost = len(plate.lost_wells)
    return (f"<h2>{html.escape(title)} <span class=small>({size}-well layout, {len(plate.wells)} wells imaged, "
            f"{lost} out of focus)</span></h2><div class=plate>{''.join(svg)}</div>")


def _well_svg(well, x, y, side):
    median = well.median_expected_level
    fill = ERROR if not well.judged and any(r.error for r in well.images) else (
        NOTHING_TO_JUDGE if math.isnan(median) else _colour(median))
    state = "lost" if well.lost_focus else ("ok" if well.judged else "unjudged")
    # The sites are drawn inside the frame by the page's script, from the well's data.
    return (f'<g class="well" data-key="{html.escape(_key(well))}" data-well="{well.name}" data-state="{state}" '
            f'data-fill="{fill}"><title>{html.escape(well.name)}</title>'
            f'<rect class="frame" x="{x + 1}" y="{y + 1}" width="{side - 2}" height="{side - 2}" fill="{fill}" '
            f'stroke="{"#fff" if well.lost_focus else "#000"}" stroke-width="{2 if well.lost_focus else 1}"/></g>')


def _site_order(site):
    return (0, int(site)) if site.isdigit() else (1, site)


def _well_data(well, output):
    """The well's panel text and its images: ``[site, level, expected, in focus, name, png, error, colour]``."""
    images = []
    for image in sorted(well.images, key=lambda r: (_site_order(r.place.site), r.path)):
        png = os.path.relpath(image.annotated, output) if image.annotated else ""
        colour = ERROR if image.error else (_colour(image.expected) if image.judged else NOTHING_TO_JUDGE)
        images.append([image.place.site, int(image.level) if image.judged else None,
                       round(image.expected, 2) if image.judged else None, int(image.in_focus),
                       Path(image.path).name, Path(png).as_posix() if png else "", image.error, colour])
    judged = len(well.judged)
    fraction = well.in_focus_fraction
    summary = (f"{len(well.images)} image(s), {judged} with something to judge"
               + ("" if not judged else f"; {round(100 * fraction)} % in focus, median expected level "
                                        f"{well.median_expected_level:.2f}, worst {well.worst_expected_level:.2f}"))
    title = f"{well.plate}" + (f" · channel {well.channel}" if well.channel else "") + f" · well {well.name}"
    return {"title": title, "summary": summary, "images": images}


def _legend():
    boxes = "".join(f'<span style="background:{_colour(k)}">{k}</span>' for k in range(11))
    return (f'<p class="legend">Expected level: in focus {boxes} out of focus &nbsp; '
            f'<span style="background:{NOTHING_TO_JUDGE}">&nbsp;</span> nothing to judge &nbsp; '
            f'<span style="background:{ERROR};color:#fff">&nbsp;</span> not assessed &nbsp; '
            '<span style="outline:1px solid #555">&nbsp;</span> not imaged &nbsp; white frame: the well lost focus '
            '(fewer than half its images in focus). Small squares are the sites.</p>')


def _histogram(counts, totals):
    bars = [(str(k), n, _colour(k)) for k, n in enumerate(counts)]
    bars += [("none", totals["nothing to judge"], NOTHING_TO_JUDGE), ("error", totals["errors"], ERROR)]
    peak = max([n for _, n, _ in bars] + [1])
    width, height = 34, 120
    svg = [f'<svg class="histogram" width="{len(bars) * width + 10}" height="{height + 34}">']
    for i, (label, n, colour) in enumerate(bars):
        h = height * n / peak
        svg.append(f'<rect x="{5 + i * width}" y="{height - h + 14}" width="{width - 4}" height="{h}" fill="{colour}" '
                   f'stroke="#333"/><text x="{5 + i * width + width / 2 - 2}" y="{height + 28}" text-anchor="middle" '
                   f'font-size="11">{label}</text><text x="{5 + i * width + width / 2 - 2}" y="{height - h + 11}" '
                   f'text-anchor="middle" font-size="10">{n}</text>')
    svg.append("</svg>")
    return "".join(svg)


def _gallery(screen, worst):
    judged = sorted((r for r in screen.images if r.judged), key=lambda r: -r.expected)[:worst]
    if not judged:
        return ""
    figures = []
    for image in judged:
        thumbnail = _thumbnail(image)
        where = (f"{image.place.plate} {image.place.well}" + (f" site {image.place.site}" if image.place.site else "")
                 if image.place else "no well")
        img = f'<img alt="" src="data:image/jpeg;base64,{thumbnail}">' if thumbnail else ""
        figures.append(f"<figure>{img}<figcaption><b>{html.escape(where)}</b>: expected level {image.expected:.2f}"
                       f"<br><span class=small>{html.escape(Path(image.path).name)}</span></figcaption></figure>")
    return f'<h2>The {len(judged)} least sharp images</h2><div class="gallery">{"".join(figures)}</div>'


def _thumbnail(image):
    """A small JPEG of the annotated PNG (else of the image itself), base64; "" if neither can be read."""
    from PIL import Image

    try:
        if image.annotated:
            picture = Image.open(image.annotated).convert("RGB")
        else:
            from .image_files import read_planes
            from .overlay import display_gray

            picture = Image.fromarray(display_gray(read_planes(image.path)[0][1])).convert("RGB")
    except Exception:  # a thumbnail is a nicety: a file gone or unreadable since predict just has none
        return ""
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _listing(title, images, errors=False):
    if not images:
        return ""
    shown = images[:500]
    items = "".join(f"<li>{html.escape(r.path)}" + (f": {html.escape(r.error)}" if errors else "") + "</li>"
                    for r in shown)
    more = f"<li>... and {len(images) - len(shown)} more</li>" if len(images) > len(shown) else ""
    return f"<details><summary>{html.escape(title)}: {len(images)}</summary><ul>{items}{more}</ul></details>"
