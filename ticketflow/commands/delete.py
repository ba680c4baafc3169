"""`ticketflow delete KEY...`: delete uploads from support_ticket/raw/ and retract what was derived from them.

A deletion is an erasure request: S3's ObjectRemoved event starts an execution that removes the key's published
rows, its quarantined rows and each run's copies and reports (`ticketcore.erasure`). Locally this runs here, to
the end; with --target aws the object is deleted (a delete marker) and the bucket's event runs the erasure.
An S3 lifecycle expiration is not an erasure request and retracts nothing."""

from __future__ import annotations

import argparse

from ticketcore.layout import RAW_PREFIX
from ticketflow.ops.target import add_target_options, aws_target, fail, home_of, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("delete", help="delete uploads under support_ticket/raw/ and retract their published "
                                      "and quarantined rows (an erasure, recorded as an execution)")
    p.add_argument("keys", nargs="+", metavar="KEY",
                   help=f"the upload's key ({RAW_PREFIX}<name>), or its name under {RAW_PREFIX}")
    add_target_options(p)
    p.set_defaults(func=main)


def full_key(key: str) -> str:
    return key if key.startswith(RAW_PREFIX) else RAW_PREFIX + key


def main(args: argparse.Namespace) -> int:
    keys = [full_key(k) for k in args.keys]
    if args.target == "aws":
        try:
            target = aws_target(args)
            s3 = target.client("s3")
            for key in keys:
                s3.delete_object(Bucket=target.resources.bucket, Key=key)
                print(f"deleted s3://{target.resources.bucket}/{key} (a delete marker; its versions stay until "
                      "the lifecycle rule expires them)")
        except operational_errors() as err:
            return fail(str(err))
        print("the bucket's event starts the erasure; follow it with: ticketflow executions --target aws")
        return 0

    from ticketflow.local.runtime import LocalRuntime

    home = home_of(args)
    if not (home / "bucket").is_dir():
        return fail(f"no local bucket at {home / 'bucket'} (nothing deleted)")
    ok = True
    with LocalRuntime(home=home) as runtime:
        # As on S3, a key already deleted can be deleted again (another delete marker, another erasure: what
        # an execution still running at the first one left behind goes too); a key never uploaded cannot.
        absent = [k for k in keys if not runtime.storage.exists(k) and not runtime.storage.has_versions(k)]
        if absent:
            return fail(f"no object at {', '.join(absent)} in {runtime.storage.base}, now or before (nothing deleted)")
        for key in keys:
            upload = runtime.delete(key)
            for name in upload.started:
                desc = runtime.wait(name)
                summary = runtime.summary(name)
                retraction = summary.get("retraction") or {}
                if desc["status"] == "SUCCEEDED":
                    print(f"{key}: deleted; erasure {name} SUCCEEDED ({retraction.get('outcome')}): "
                          f"{retraction.get('rows_retracted', 0):,} published rows in "
                          f"{retraction.get('files_retracted', 0)} files, and "
                          f"{len(retraction.get('runs', []))} runs' quarantined rows, copies and reports: "
                          f"{retraction.get('objects_deleted', 0)} objects deleted")
                else:
                    ok = False
                    print(f"{key}: deleted; execution {name} {desc['status']} at {summary['failed_state']}: "
                          f"{summary['error']} (alerted; redrive with: ticketflow redrive {name})")
            if upload.dead_lettered or not upload.started + upload.duplicates:
                ok = False
                print(f"{key}: deleted, but no erasure started (see {home / 'dead_letters.jsonl'})")
    return 0 if ok else 1
