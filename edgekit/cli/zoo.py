"""`edgekit zoo list`: the model zoo."""

from __future__ import annotations

from edgekit.report import table


def add_parser(sub) -> None:
    zoo = sub.add_parser("zoo", help="the model zoo").add_subparsers(metavar="ACTION")
    zl = zoo.add_parser("list", help="list models: name, params, MACs, paper")
    zl.add_argument("pattern", nargs="?", default="*")
    zl.set_defaults(func=cmd_zoo_list)


def cmd_zoo_list(args) -> int:
    from edgekit.model_zoo import count_macs, get_spec, list_models

    rows = []
    for name in list_models(args.pattern):
        spec = get_spec(name)
        model = spec.build()
        params = sum(p.numel() for p in model.parameters())
        rows.append([name, spec.family, f"{params / 1e6:.2f}M", f"{count_macs(model, spec.example_inputs(0)) / 1e6:.1f}M",
                     spec.paper])
    print(table(["name", "family", "params", "MACs", "paper"], rows))
    return 0
