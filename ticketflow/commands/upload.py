"""`ticketflow upload FILE...`: put files under support_ticket/raw/ (locally, or in a stack's bucket).

Locally nothing runs here: a running `ticketflow watch` picks the files up (`ticketflow run` uploads and
runs in one go). Each file appears whole or not at all, and the originals are never modified."""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketcore.layout import RAW_PREFIX
from ticketcore.storage import LocalStorage
from ticketflow.ops.target import add_target_options, aws_target, fail, home_of, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upload", help="put files under support_ticket/raw/ without running anything "
                                      "(a running `ticketflow watch`, or the deployed stack, picks them up)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_target_options(p)
    p.set_defaults(func=main)


def put_local(home: Path, path: Path) -> tuple[str, str, bool]:
    """PUT into the local bucket as a new object version of `support_ticket/raw/<name>` (whole or not at all:
    a watcher never sees half a file); returns (key, version id, replaced an existing object). The version
    is the upload's identity: `ticketflow watch` sends its event once, and `run` never sends it again."""
    from ticketflow.local.runtime import LOCAL_BUCKET

    key = RAW_PREFIX + path.name
    storage = LocalStorage(home.resolve(), LOCAL_BUCKET)
    replaced = storage.exists(key)
    return key, storage.put_file(key, path).version_id, replaced


def main(args: argparse.Namespace) -> int:
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        return fail(f"no such file: {', '.join(missing)} (nothing uploaded)")
    not_files = [str(f) for f in args.files if not f.is_file()]
    if not_files:
        return fail(f"not a file: {', '.join(not_files)} (nothing uploaded)")
    names = [f.name for f in args.files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return fail(f"several files named {', '.join(duplicates)}: they would land on the same key "
                    "(nothing uploaded)")
    if args.target == "aws":
        try:
            for path, uri in zip(args.files, aws_target(args).upload(list(args.files)), strict=True):
                print(f"uploaded {path} -> {uri}")
        except operational_errors() as err:
            return fail(str(err))
        print("the bucket's event starts the pipeline; follow it with: ticketflow executions --target aws")
        return 0
    home = home_of(args)
    for path in args.files:
        key, version_id, replaced = put_local(home, path)
        print(f"uploaded {path} -> {key} (version {version_id}"
              + ("; the version that was there stays as an older version)" if replaced else ")"))
    print(f"local bucket: {(home / 'bucket').resolve()}; a running `ticketflow watch` picks these up "
          "(nothing was run)")
    return 0
