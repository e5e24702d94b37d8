"""`deid-train`: prepare data, train, export.

    deid-train train --shard DIR [--preset gpu|cpu|test] [--max-minutes M] [--resume CKPT | --init-generator ONNX] ...
    torchrun --nproc_per_node N -m deid_train.cli train ...   (DDP; --batch-size is the global batch: distributed.py)
    deid-train prepare ...   (deid_train.prepare registers itself)
    deid-train export ...    (deid_train.export registers itself)

Each optional subcommand module provides `register(subparsers)`, which adds its parser and sets `handler`
(a callable taking the parsed arguments and returning an exit code) with `parser.set_defaults(handler=...)`. A module that is absent, or whose
dependencies are missing on this machine (e.g. the bare GPU box), is skipped with a note in --help.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from deid_train import config as train_config

OPTIONAL_SUBCOMMANDS = ("deid_train.prepare", "deid_train.export")


def run_train(arguments: argparse.Namespace) -> int:
    from deid_train.trainer import Trainer

    config = train_config.from_arguments(arguments)
    if not config.shard:
        raise ValueError("expected --shard DIR (a training shard from `deid-train prepare --shard DIR`), got none")
    from deid_train import distributed

    trainer = Trainer(config)
    try:
        summary = trainer.train()
    finally:
        distributed.stop(trainer.ranks)
    if trainer.ranks.is_main:
        print(json.dumps(summary, indent=1))
    return 1 if summary.get("diverged") else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deid-train", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    train = subparsers.add_parser("train", help="train the generator (resumable, wall-clock budget)",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train_config.add_arguments(train)
    train.set_defaults(handler=run_train)
    skipped = []
    for module_name in OPTIONAL_SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except Exception as error:   # noqa: BLE001 - an optional subcommand must never break `train`
            skipped.append(f"{module_name.rsplit('.', 1)[1]} ({error})")
            continue
        module.register(subparsers)
    if skipped:
        parser.epilog = "unavailable here: " + "; ".join(skipped)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return int(arguments.handler(arguments) or 0)


if __name__ == "__main__":
    sys.exit(main())
