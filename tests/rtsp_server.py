#!/usr/bin/python3
"""A real RTSP server for the tests (GStreamer's gst-rtsp-server through python3-gi, from Debian packages).

Serves a folder of JPEG frames, looping without end, as an H.264 stream at rtsp://127.0.0.1:PORT/MOUNT, paced at
the given frame rate like a camera. Run with the system python3 (python3-gi is not in the venv):

    /usr/bin/python3 tests/rtsp_server.py --frames DIR/%05d.jpg --port 8554

Prints `ready` on stdout once it listens; runs until killed. `--check` only checks that the packages are there
(exit 1 naming what is missing); tools/install_rtsp_server.sh installs them.
"""
from __future__ import annotations

import argparse
import sys


def launch_line(frames: str, fps: int) -> str:
    """JPEG files -> raw video -> H.264 (a keyframe every second, so a client that reconnects starts at once)."""
    return (f'( multifilesrc location="{frames}" loop=true caps="image/jpeg,framerate={fps}/1" ! jpegdec ! '
            f"videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={fps} bitrate=4000 ! rtph264pay name=pay0 pt=96 config-interval=1 )")


ELEMENTS = ("multifilesrc", "jpegdec", "videoconvert", "x264enc", "rtph264pay")


def missing_parts() -> str | None:
    """What of GStreamer is not installed for this server, or None when everything is."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401
    except (ImportError, ValueError) as error:
        return f"python3-gi with GstRtspServer 1.0 ({error})"
    Gst.init(None)
    missing = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    return f"GStreamer elements {', '.join(missing)}" if missing else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the packages are installed")
    parser.add_argument("--frames", help="printf pattern of the JPEG files, e.g. DIR/%%05d.jpg")
    parser.add_argument("--port", type=int)
    parser.add_argument("--mount", default="/clip")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    missing = missing_parts()
    if missing or args.check:
        if missing:
            print(f"rtsp_server: not installed: {missing} (tools/install_rtsp_server.sh)", file=sys.stderr)
        return 1 if missing else 0
    if args.frames is None or args.port is None:
        parser.error("--frames and --port are required (or --check)")
    from gi.repository import GLib, GstRtspServer
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.frames, args.fps))
    factory.set_shared(True)  # one live stream for every client, as a camera has
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
