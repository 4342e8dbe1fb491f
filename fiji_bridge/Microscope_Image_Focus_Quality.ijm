// Plugins > Microscope Image Focus Quality: how defocused the current image is, patch by patch.
// Written by `focus-quality install-fiji` (microscope-focus-quality {{VERSION}}). The model runs in the Python
// environment below, kept warm between calls until this Fiji ends. Remove with:
//   focus-quality install-fiji --uninstall "{{IMAGEJ_DIR}}"
// From a macro: run("Microscope Image Focus Quality", "planes=[Every plane of this channel] probability");
// options not named take their defaults (the Macro Recorder writes the line for you).
// {{MARKER}}

var title = "Microscope Image Focus Quality";
python = "{{PYTHON}}";
client = "{{CLIENT}}";
if (!File.exists(python) || !File.exists(client))
	fail("The Python environment this command was installed from is gone (moved or removed):\n   " + python
		+ "\n \nIn the Python environment where microscope-focus-quality is now installed, run:\n"
		+ "   focus-quality install-fiji \"{{IMAGEJ_DIR}}\"");
if (nImages == 0)
	fail("There are no images open.");
original = getImageID();
image = getTitle();
stack = nSlices > 1;
Stack.getPosition(channel, slice, frame);
index = getSliceNumber();

// The first call of a session starts the worker now, so that it loads while the dialog is open.
java = newArray("--class-path", call("java.lang.System.getProperty", "java.class.path"), "--imagej-dir",
	getDirectory("imagej"), "--java-home", call("java.lang.System.getProperty", "java.home"));
exec(python, client, "--start", java[0], java[1], java[2], java[3], java[4], java[5]);

Dialog.create(title);
{{DIALOG}}
Dialog.show();
{{READ}}

// Hand a copy of the image to the worker (the original keeps its title, file and unsaved changes).
work = getDirectory("temp") + "focus-quality-" + getTime() + "-" + round(random * 1e6) + File.separator;
File.makeDirectory(work);
batch = is("batch mode");
setBatchMode(true);
selected = selectionType() != -1;
if (selected)
	run("Select None");
run("Duplicate...", "title=focus-quality-input duplicate");
saveAs("Tiff", work + "input.tif");
close();
selectImage(original);
if (selected)
	run("Restore Selection");
showStatus("Assessing focus of " + image + "...");
lines = split(exec(python, client, "--work", work, "--title", image, "--position", channel, slice, frame, index,
	java[0], java[1], java[2], java[3], java[4], java[5], {{ARGUMENTS}}), "\n");
reply = List.getList();  // the caller's key-value list, restored below
List.clear();
for (i = 0; i < lines.length; i++) {
	tab = indexOf(lines[i], "\t");
	if (tab > 0)
		List.set(substring(lines[i], 0, tab), replace(substring(lines[i], tab + 1), "\\\\n", "\n"));
}
error = List.get("error");
overlay = List.get("overlay");
table = List.get("table");
probability = List.get("probability");
probabilityTitle = List.get("probability_title");
best = List.get("best");
bestTitle = List.get("best_title");
position = List.get("position");
List.setList(reply);
if (overlay == "" && error == "")
	error = "the focus worker gave no answer:\n" + String.join(lines, "\n");
if (error != "") {
	cleanUp(work);
	restoreBatchMode(batch);
	fail(error);
}

open(overlay);
Overlay.copy;
close();
selectImage(original);
Overlay.paste;
if (position != "") {
	at = split(position, " ");
	Stack.setPosition(parseInt(at[0]), parseInt(at[1]), parseInt(at[2]));
}
// Into the "Focus Quality" window if there is one (as the Python-driven command does). ImageJ shows a new
// table's numbers to the "Decimal places" of Set Measurements; probabilities need 6.
saveSettings();
run("Set Measurements...", "decimal={{DECIMALS}}");
Table.open(table, "Focus Quality");
restoreSettings();
shown = newArray(probability, best);
titles = newArray(probabilityTitle, bestTitle);
for (i = 0; i < shown.length; i++) {
	if (shown[i] != "") {
		open(shown[i]);
		rename(titles[i]);
	}
}
cleanUp(work);
restoreBatchMode(batch);
showStatus("");

function restoreBatchMode(batch) {
	if (!batch)
		setBatchMode("exit and display");
}

function cleanUp(work) {
	files = getFileList(work);
	for (i = 0; i < files.length; i++)
		deleted = File.delete(work + files[i]);
	deleted = File.delete(work);
}

// The message in ImageJ's error dialog (printed instead when ImageJ has no window), then stop.
function fail(message) {
	showMessage(title, message);
	exit;
}
