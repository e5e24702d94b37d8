#!/usr/bin/env python3
"""De-identify a camera live, on screen (q or Esc quits):  python examples/camera.py [SOURCE] [SINK]"""
import argparse

from deid_sdk import Filter
from deid_sdk.io import open_sink, open_source

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("source", nargs="?", default="/dev/video0", help="camera or stream URI (default: /dev/video0)")
parser.add_argument("sink", nargs="?", default="display://0", help="where to show it (default: display://0)")
args = parser.parse_args()

camera = open_source(args.source)
display = open_sink(args.sink, camera)
with Filter(color=camera.color) as deid:
    while not display.wants_stop and (frame := camera.read()) is not None:
        deid(frame.image, inplace=True)       # every face replaced (or blurred) before anything is shown
        display.write(frame)
display.close()
camera.close()
