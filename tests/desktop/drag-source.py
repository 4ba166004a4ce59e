"""Another application's window to drag a file from, as a file manager offers one: a GTK 3
drag source of text/uri-list for PATH, a window titled "drag source" at X,Y on the X display.
It prints "ready" once shown, "drag-begin" when GTK has started a drag from it, "drag-failed"
if the drop was refused, and "drag-end" when it is over; the test moves the pointer with
xdotool. Needs Debian's python3 with python3-gi. Usage: drag-source.py PATH X Y"""
import sys

import gi

gi.require_version("Gdk", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402

path, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
uri = GLib.filename_to_uri(path, None)


def say(line):
    print(line, flush=True)


window = Gtk.Window(title="drag source")
window.set_default_size(120, 80)
window.move(x, y)
button = Gtk.Button(label="file")
button.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
button.drag_source_add_uri_targets()
button.connect("drag-begin", lambda *_: say("drag-begin"))
button.connect("drag-data-get", lambda _w, _c, data, _i, _t: data.set_uris([uri]))
button.connect("drag-end", lambda *_: say("drag-end"))
button.connect("drag-failed", lambda *_: say("drag-failed") or False)
window.add(button)
window.connect("destroy", Gtk.main_quit)
window.connect("map-event", lambda *_: say("ready"))
window.show_all()
Gtk.main()
