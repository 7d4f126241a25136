"""`edgekit generate`: text from an exported LLM artifact (torch-free)."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    gen = sub.add_parser("generate", help="generate text with an exported LLM artifact (torch-free)")
    gen.add_argument("artifact")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    gen.add_argument("--top-k", type=int, default=40)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--threads", type=int, default=1)
    gen.add_argument("--first-threshold", type=float, default=None,
                     help="FiRST artifacts: override the routers' threshold (0 = never skip a layer)")
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from edgekit.generate import open_llm

    options = {} if args.first_threshold is None else {"threshold": args.first_threshold}
    llm = open_llm(args.artifact, threads=args.threads, **options)
    r = llm.generate(args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                     top_k=args.top_k, seed=args.seed)
    print(args.prompt + r.text)
    if r.skipped_layers is not None:
        print(f"\n[FiRST: skipped layers {r.skipped_layers or 'none'} of {llm.n_layers} "
              f"(threshold {llm.threshold})]", file=sys.stderr)
    print(f"\n[{r.prompt_tokens} prompt tokens: {r.prefill_tokens_per_s:.1f} tok/s prefill; "
          f"{len(r.new_tokens)} new tokens: {r.decode_tokens_per_s:.1f} tok/s decode; "
          f"stopped on {r.stop_reason}; {llm.manifest['target']}, {args.threads} thread(s)]", file=sys.stderr)
    return 0
