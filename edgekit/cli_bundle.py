"""`edgekit bundle ARTIFACT --platform android|ios --out DIR`: the app-integration folder of an artifact."""

from __future__ import annotations

import sys


def add_bundle_parser(sub) -> None:
    b = sub.add_parser("bundle", help="an Android/iOS integration folder: model files, typed wrapper, dependency, README")
    b.add_argument("artifact", help="an artifact directory written by `edgekit export` / `export-llm`")
    b.add_argument("--platform", required=True, help="android (.pte, .tflite) or ios (.mlpackage, .pte)")
    b.add_argument("--out", required=True, help="the folder to write (replaced if it is an earlier bundle)")
    b.add_argument("--package", default=None, help="Kotlin package of the Android wrapper (default edgekit.bundle)")
    b.add_argument("--class-name", default=None, help="the wrapper's class name (default: from the model's name)")
    b.set_defaults(func=cmd_bundle)


def cmd_bundle(args) -> int:
    from edgekit.bundle import DEFAULT_PACKAGE, bundle

    r = bundle(args.artifact, args.platform, args.out, package=args.package or DEFAULT_PACKAGE,
               class_name=args.class_name)
    deps = ", ".join((f"{d['name']}:{d['version']}" if d["system"] == "gradle" else
                      f"{d['name']} @ {d['version']}" if d["system"] == "swiftpm" else d["name"])
                     for d in r.summary["dependencies"])
    print(f"{r.platform} bundle of {r.target} artifact -> {r.path}", file=sys.stderr)
    print(f"  wrapper   {r.wrapper.relative_to(r.path)} (class {r.class_name}; "
          f"methods {', '.join(r.summary['methods'])})")
    print(f"  files     {', '.join(r.files)} (sha256 checked)")
    print(f"  runtime   {deps}")
    print(f"  next      read {r.path / 'README.md'}")
    return 0
