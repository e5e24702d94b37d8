#!/usr/bin/env python3
"""Jetson kiosk: CSI camera -> de-identification -> screen, zero copy.

jetson_utils' videoSource hands out cudaImage buffers in mapped memory; frame.image is a NumPy view of that
same memory, the filter writes into it in place, and videoOutput renders the very same buffer.

    python3 examples/kiosk_jetson.py [--camera csi://0] [--display display://0] [--backend auto]
"""
import argparse

from deid_sdk import Filter
from deid_sdk.io import open_sink, open_source

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--camera", default="csi://0", help="camera URI (default: csi://0)")
parser.add_argument("--display", default="display://0", help="output URI (default: display://0)")
parser.add_argument("--backend", default="auto", help="inference backend: auto (TensorRT, else onnxruntime CUDA, else CPU), tensorrt, onnxruntime")
parser.add_argument("--io", default="jetson", choices=("jetson", "auto"), help="jetson: require jetson_utils")
args = parser.parse_args()

camera = open_source(args.camera, io=args.io)
display = open_sink(args.display, camera, io=args.io)
with Filter(color=camera.color, backend=args.backend) as deid:
    while not display.wants_stop and (frame := camera.read()) is not None:
        deid(frame.image, inplace=True)
        display.write(frame)
        if hasattr(display, "set_status"):
            display.set_status(f"deid | {deid.stats['fps']:.0f} FPS | {len(deid.faces)} faces")
display.close()
camera.close()
