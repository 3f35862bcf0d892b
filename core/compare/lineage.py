"""Lineage: how runs derive from each other (baseline -> distilled -> pruned -> quantized), laid out
as a tree: depth left to right, one row per leaf, each parent centred on its children."""

from __future__ import annotations

from dataclasses import dataclass

from core.contract.run_summary import RunSummary


@dataclass
class LineageNode:
    run: RunSummary
    parent_id: int | None  # None when its parent is not among the runs shown (a root here)
    depth: int
    row: float  # vertical position: leaves take 0, 1, 2...; a parent sits at its children's mean

    @property
    def run_id(self) -> int:
        return self.run.run_id


def lineage_nodes(runs: list[RunSummary]) -> list[LineageNode]:
    """Every run as a tree node, in drawing order (each root followed by its subtree)."""
    by_id = {run.run_id: run for run in runs}
    children: dict[int | None, list[int]] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        parent = run.parent_id if run.parent_id in by_id and run.parent_id != run.run_id else None
        children.setdefault(parent, []).append(run.run_id)
    nodes: list[LineageNode] = []
    next_leaf = [0]

    def place(run_id: int, parent: int | None, depth: int, seen: frozenset) -> float:
        node = LineageNode(by_id[run_id], parent, depth, 0.0)
        nodes.append(node)
        kids = [kid for kid in children.get(run_id, []) if kid not in seen]
        if kids:
            rows = [place(kid, run_id, depth + 1, seen | {kid}) for kid in kids]
            node.row = sum(rows) / len(rows)
        else:
            node.row = float(next_leaf[0])
            next_leaf[0] += 1
        return node.row

    for root in children.get(None, []):
        place(root, None, 0, frozenset({root}))
    return nodes


def chain(runs: list[RunSummary], run_id: int) -> list[RunSummary]:
    """`run_id` and its ancestors among `runs`, root first."""
    by_id = {run.run_id: run for run in runs}
    path: list[RunSummary] = []
    current = by_id.get(run_id)
    while current is not None and current not in path:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return path[::-1]
