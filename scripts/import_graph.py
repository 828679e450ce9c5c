"""Who imports whom inside genlab: one line per module, its genlab imports (top-level and lazy).

    python scripts/import_graph.py            # every module
    python scripts/import_graph.py --shared   # only shared code, with the families it reaches

Shared code (api.py, cli.py, contract.py, data/, training/, metrics/, serve/, tune/ and the
infrastructure packages) must not import a model family (DESIGN.md, principle 6); `--shared`
marks every such import with `!!`. Pure `ast`: nothing is imported, so it runs without torch.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FAMILIES = (
    "vae",
    "gan",
    "flows",
    "autoregressive",
    "text",
    "image2image",
    "audio",
    "music",
    "rl",
    "diffusion",
    "keras",
    "chat",
    "summarize",
    "foundations",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The genlab modules `path` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("genlab"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("genlab")
        ):
            found.add(node.module)
    return found


def family_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FAMILIES else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", action="store_true", help="only shared code")
    args = parser.parse_args(argv)
    leaks = 0
    for path in sorted((SRC / "genlab").rglob("*.py")):
        name = module_name(path)
        family = family_of(name)
        if args.shared and family is not None:
            continue
        targets = sorted(imports_of(path) - {name})
        marked = []
        for target in targets:
            bad = family is None and family_of(target) is not None
            leaks += bad
            marked.append(("!!" if bad else "") + target.removeprefix("genlab."))
        print(f"{name.removeprefix('genlab.') or 'genlab'}: {', '.join(marked) or '-'}")
    if args.shared:
        print(f"\n{leaks} imports of a family from shared code")
    return 1 if args.shared and leaks else 0


if __name__ == "__main__":
    sys.exit(main())
