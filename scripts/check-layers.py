#!/usr/bin/env python3
"""Checks that the library reads as the pipeline: imports only run down the layers.

Two rules, both from the imports written in `src/` (`use` items and inline `crate::`/`super::`
paths; comments, doc links and strings are ignored):

1. Top-level modules have a layer (LAYERS below); a module may import only from lower layers.
2. No import circle among files, except a module with its own descendants (a child reaching back
   to its parent's items through `super::` is how Rust modules share, not a circle).

Run by `make test`; prints the offending imports and exits 1 if either rule is broken.
`--graph` prints every file-to-file edge instead.
"""

import re
import sys
from pathlib import Path

# Bottom to top. A module may import from any layer below its own, never from its own layer's
# other modules nor from above. `error` and `util` sit under everything.
LAYERS = [
    ["util", "error"],
    ["device"],
    ["render"],
    ["io"],
    ["nets"],
    ["face_model"],
    ["texture"],
    ["fit"],
    ["eval", "texture_corpus"],
    ["web"],
]

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def strip_comments_and_strings(text: str) -> str:
    # One left-to-right scan, so that whichever starts first wins: a `//` inside a string (the
    # shaders' `//#kernel` marker) is not a comment, and a quote inside a comment opens no string.
    # Raw and plain string literals (a WGSL source or a message can mention `crate::`) become "".
    token = re.compile(r'/\*.*?\*/|//[^\n]*|r#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"', re.S)
    return token.sub(lambda m: '""' if m.group(0).endswith('"') or m.group(0).endswith("#") else " ", text)


def module_files(crate_root: Path, base: Path):
    """Maps module paths (tuples) to files, for the crate whose root file is `crate_root`."""
    modules = {(): crate_root}

    def walk(path: tuple, file: Path, directory: Path):
        text = strip_comments_and_strings(file.read_text())
        for name in re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, flags=re.M):
            for candidate in (directory / f"{name}.rs", directory / name / "mod.rs"):
                if candidate.exists():
                    child = path + (name,)
                    modules[child] = candidate
                    sub = candidate.parent if candidate.name == "mod.rs" else candidate.with_suffix("")
                    walk(child, candidate, sub)
                    break

    walk((), crate_root, base)
    return modules


def expand_use_tree(tree: str):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1 : i], tree[i + 1 :]
                parts, d, last = [], 0, 0
                for j, c in enumerate(inner):
                    if c == "{":
                        d += 1
                    elif c == "}":
                        d -= 1
                    elif c == "," and d == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                out = []
                for part in parts:
                    if part:
                        out.extend(expand_use_tree(prefix + part + rest))
                return out
    return [tree]


def referenced_paths(text: str):
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", text):
        paths.extend(p.split(" as ")[0] for p in expand_use_tree(tree))
    paths.extend(re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text))
    return paths


def resolve(module: tuple, path: str, modules: dict, is_mod_file: bool):
    segments = [s for s in path.split("::") if s]
    if not segments:
        return None
    if segments[0] == "crate":
        base, rest = (), segments[1:]
    elif segments[0] in ("super", "self"):
        # In `a/b.rs` (module a::b), `self` is a::b and `super` is a.
        base = module
        while segments and segments[0] in ("super", "self"):
            if segments.pop(0) == "super":
                base = base[:-1]
        rest = segments
    elif module + (segments[0],) in modules:
        base, rest = module, segments  # a child module named without `self::`
    else:
        return None  # another crate, or a name in scope
    target = base
    for segment in rest:
        if target + (segment,) in modules:
            target = target + (segment,)
        else:
            break
    return target


def edges_of(modules: dict):
    edges = {}
    for module, file in modules.items():
        text = strip_comments_and_strings(file.read_text())
        # A file's unit tests (`#[cfg(test)] mod tests`, or `cfg(all(test, ...))`, at its end) may
        # reach across the layer to build their cases; the library's layering is what the rule is
        # about. (Inside them `super::super` is one level higher than this script would read it.)
        test_module = re.search(r"#\[cfg\((?:all\()?test\b[^\]]*\]\s*mod\s+\w+\s*\{", text)
        if test_module:
            text = text[: test_module.start()]
        targets = set()
        for path in referenced_paths(text):
            target = resolve(module, path, modules, file.name == "mod.rs")
            if target is not None and target != module:
                targets.add(target)
        edges[module] = targets
    return edges


def circles(modules: dict, edges: dict):
    """Strongly connected components of more than one file, child-to-ancestor edges left out."""
    graph = {
        m: {t for t in ts if not (len(t) < len(m) and m[: len(t)] == t)} for m, ts in edges.items()
    }
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            connect(v)
    return found, graph


def name(module: tuple, modules: dict):
    return str(modules[module].relative_to(ROOT))


def main():
    problems = []
    layer_of = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    crates = [
        ("library", module_files(SRC / "lib.rs", SRC)),
        ("ganfit CLI", module_files(SRC / "bin/ganfit/main.rs", SRC / "bin/ganfit")),
    ]
    for crate_name, modules in crates:
        edges = edges_of(modules)
        if "--graph" in sys.argv:
            for m, ts in sorted(edges.items()):
                for t in sorted(ts):
                    print(f"{name(m, modules)} -> {name(t, modules)}")
        if crate_name == "library":
            for top in sorted({m[0] for m in modules if m}):
                if top not in layer_of:
                    problems.append(f"src/{top}: not in a layer of scripts/check-layers.py")
            for m, ts in sorted(edges.items()):
                for t in sorted(ts):
                    if not m or not t or m[0] == t[0]:
                        continue
                    lm, lt = layer_of.get(m[0]), layer_of.get(t[0])
                    if lm is not None and lt is not None and lt >= lm:
                        problems.append(
                            f"{name(m, modules)} imports {name(t, modules)}: "
                            f"'{t[0]}' is not below '{m[0]}'"
                        )
        found, graph = circles(modules, edges)
        for component in found:
            members = set(component)
            links = [
                f"{name(m, modules)} -> {name(t, modules)}"
                for m in component
                for t in sorted(graph[m])
                if t in members
            ]
            problems.append(f"import circle in the {crate_name}:\n    " + "\n    ".join(links))
    if problems:
        print("check-layers: imports that run against the pipeline's layers:")
        for p in problems:
            print(f"  {p}")
        sys.exit(1)
    print("check-layers: ok (imports run down the layers; no import circles)")


if __name__ == "__main__":
    main()
