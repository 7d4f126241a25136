"""`edgekit inspect`: summarise an artifact's manifest."""

from __future__ import annotations

import json

from edgekit.report import cost_lines, parity_cell


def add_parser(sub) -> None:
    ins = sub.add_parser("inspect", help="summarise an artifact's manifest")
    ins.add_argument("artifact")
    ins.add_argument("--json", action="store_true", help="print the whole manifest")
    ins.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    from edgekit.artifact import load_artifact, method_specs

    art = load_artifact(args.artifact)
    m = art.manifest
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    print(f"artifact   {art.path}")
    print(f"model      {m['model']['name']} ({m['model']['class']}, {m['model']['parameters']:,} parameters)")
    print(f"target     {m['target']}  options {json.dumps(m['options'])}  precision {m['precision']}")
    print("producer   " + ", ".join(f"{k} {v}" for k, v in m["producer"].items()))
    print("inputs     " + "; ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in m["signature"]["inputs"]))
    print("outputs    " + "; ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in m["signature"]["outputs"]))
    methods = method_specs(m)
    if len(methods) > 1:  # runtime.load(path).method(name).run(...)
        print(f"methods    {len(methods)}: " + ", ".join(list(methods)[:8]) + (", ..." if len(methods) > 8 else ""))
    for f in m["files"]:
        print(f"file       {f['path']}  {f['bytes']:,} B  sha256 {f['sha256'][:16]}…")
    print(f"parity     {parity_cell(m.get('parity'))}  (artifact vs the model it was converted from)")
    for line in cost_lines(m.get("parity")):
        print(f"cost       {line}  (artifact vs the original model)")
    kinds = m["signature"].get("output_kinds")
    if kinds:
        print("kinds      " + ", ".join(f"{k}: {v}" for k, v in kinds.items()))
    info = m.get("target_info", {})
    if "delegation" in info:
        d = info["delegation"]
        print(f"delegation {d['delegated_share'] * 100:.1f}% of nodes in {d['backend']}; "
              f"portable ops: {d['portable_ops'] or 'none'}")
    if "structure" in info:
        s = info["structure"]
        print(f"coreml     {sum(s['ops'].values())} ops, weights {s['weight_encodings']}")
    comp = m.get("compression", {})
    ledger = comp.get("ledger") or []
    recipe = comp.get("recipe")
    print(f"compression {recipe['name'] + ' ' + recipe['hash'] if recipe else 'none'} ({len(ledger)} ledger rows)")
    if ledger:
        from edgekit.exporters.compression.ledger import ledger_table
        print(ledger_table(comp))
    for skip in comp.get("skipped") or []:
        print(f"skipped    {skip['layer']} (step {skip['step']}, {skip['type']}): {skip['reason']}")
    if comp.get("int8"):  # int8 recipe: calibration and the layers the fallback kept in fp32
        q = comp["int8"]
        print(f"int8       calibration {q['calibration']['source']} ({q['calibration']['samples']} samples); "
              f"kept fp32: {', '.join(f'{k} ({v})' for k, v in q['keep_fp32'].items()) or 'none'}")
    if comp.get("file"):
        from edgekit.exporters.compression.ledger import file_line
        print(file_line(comp))
    return 0
