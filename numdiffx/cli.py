"""``numdiffx`` command line: thin -- parses, calls numdiffx.studies, prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="numdiffx", description="numdiffx studies and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="run a reproducible study")
    kinds = study.add_subparsers(dest="study", required=True)
    delta = kinds.add_parser("delta", help="Jacobian error vs step on the report's MLP")
    delta.add_argument("--dtype", action="append", choices=["float64", "float32"],
                       help="repeatable; default both")
    delta.add_argument("--activation", action="append", choices=["relu", "tanh"],
                       help="repeatable; default both")
    delta.add_argument("--method", action="append",
                       choices=["forward", "backward", "central", "complex_step"],
                       help="repeatable; default forward, backward, central")
    delta.add_argument("--rows", type=int, default=100, help="input rows (default 100)")
    delta.add_argument("--json", metavar="PATH", help="also write the records as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "study" and args.study == "delta":
        from numdiffx.studies import delta_sweep, format_table

        records = delta_sweep(
            activations=args.activation or ("relu", "tanh"),
            dtypes=args.dtype or ("float64", "float32"),
            methods=args.method or ("forward", "backward", "central"),
            rows=args.rows,
            progress=lambda s: print(f"  computing {s}", file=sys.stderr, flush=True)
            if sys.stderr.isatty() else None,
        )
        print("numdiffx delta study: the report's 5-128-128-128-5 MLP, input "
              f"({args.rows}, 5), batched Jacobian vs the exact analytic one")
        print(format_table(records))
        print("\n'auto' is numdiffx's default step rule: c * eps**(1/(p+1)) * max(|x|, 1), "
              "c the stencil's error-balancing constant.\n'x+h==x' marks steps below the "
              "input's float resolution: numdiffx returns NaN with status STEP_TOO_SMALL there "
              "instead of a silent zero.")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump([r.as_dict() for r in records], fh, indent=1)
            print(f"records written to {args.json}")
        return 0
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
