#!/usr/bin/env python3
"""Prints the dependency graph of banksync's top-level modules and fails on a cycle or a layering breach.

An edge X -> Y means some file of module X names `crate::Y` in code (comments are skipped). The layering rule:
only `http`, `startup`, `cli` and `admin` (operator commands) may name `crate::state`, `crate::http`, `crate::startup` or `crate::cli`.
Usage: scripts/module-graph.py [SRC_DIR]   (default: crates/banksync/src)
"""
import os
import re
import sys

TOP = {"http", "startup", "cli", "admin"}
UPPER = {"state", "http", "startup", "cli"}


def modules(src):
    mods = {}
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            mods[name[:-3]] = [path]
        elif os.path.isdir(path):
            mods[name] = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".rs")]
    return mods


def edges(mods):
    pattern = re.compile(r"\bcrate::(\w+)")
    out = {}
    for mod, files in mods.items():
        deps = set()
        for path in files:
            with open(path, encoding="utf-8") as f:
                code = re.sub(r"//[^\n]*", "", f.read())
            deps |= {d for d in pattern.findall(code) if d in mods and d != mod}
        out[mod] = sorted(deps)
    return out


def cycles(graph):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates/banksync/src")
    graph = edges(modules(src))
    for mod in sorted(graph):
        print(f"{mod:10} -> {', '.join(graph[mod])}")
    failed = False
    for group in cycles(graph):
        inside = set(group)
        cycle_edges = [f"{a}->{b}" for a in group for b in graph[a] if b in inside]
        print(f"CYCLE among {', '.join(group)}: {' '.join(cycle_edges)}")
        failed = True
    for mod in sorted(set(graph) - TOP):
        breach = sorted(set(graph[mod]) & UPPER)
        if breach:
            print(f"LAYERING: {mod} uses {', '.join('crate::' + b for b in breach)}")
            failed = True
    if not failed:
        print("no cycles; nothing below http/startup/cli/admin uses state, http, startup or cli")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
