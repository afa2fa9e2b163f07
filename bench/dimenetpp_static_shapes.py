"""DimeNet++ with static (padded) against dynamic batch shapes: training throughput and agreement.

The DimeNet++ ports to static-shape accelerators pad every batch to fixed atom, edge and triplet
counts (``batching: padded``, :func:`dimenetpp_adapter.graph.pad_graph`); torch_geometric builds
each batch at its own size (``batching: dynamic``). On the same QM9 molecules, with the same initial
weights and the same batches, this script

1. times ``--steps`` training steps (forward, backward, Adam) of each form, alternating the two
   forms ``--repeats`` times, and prints molecules per second and the padded/dynamic ratio (the
   median over repeats), with the graph construction inside the timed step (as in training) and,
   separately, the network alone (graphs built before timing);
2. with ``--compile``, also under ``torch.compile`` (``dynamic=False``): the padded form compiles
   once, the dynamic one once per new shape;
3. checks that the two forms give the same predictions (max abs difference, eV) and the same
   gradient of one step.

Run it in the model's environment (it re-executes itself there when torch_geometric is missing):

    .venv/bin/python bench/dimenetpp_static_shapes.py [--molecules 96] [--batch-size 16]
        [--steps 6] [--repeats 3] [--hidden 64] [--blocks 2] [--device cpu|cuda] [--compile]
        [--xyz data/qm9_subset/qm9_reduced_100.xyz]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

try:
    import torch_geometric  # noqa: F401
except ImportError:  # re-run in the model's environment
    from orchestrator import envs, registry

    env = envs.ensure(registry.get_model("dimenetpp").folder, lambda line: None)
    os.execve(str(env.python), [str(env.python), *sys.argv], {**os.environ, **env.variables()})

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(REPO / "images" / "dimenetpp"))
from dimenetpp_adapter.adapter import DimeNetPPAdapter  # noqa: E402
from runner.datasets import qm9  # noqa: E402
from runner.tasks import get_task  # noqa: E402


def adapter_for(args, batching: str) -> DimeNetPPAdapter:
    hp = {"hidden_channels": args.hidden, "num_blocks": args.blocks, "int_emb_size": 64, "basis_emb_size": 8,
          "out_emb_channels": 2 * args.hidden, "num_spherical": 7, "num_radial": 6, "cutoff": 5.0,
          "max_num_neighbors": 32, "envelope_exponent": 5, "num_before_skip": 1, "num_after_skip": 2,
          "num_output_layers": 3, "epochs": 1, "batch_size": args.batch_size, "learning_rate": 1e-3,
          "warmup_steps": 1, "decay_rate": 0.01, "decay_steps": 4000000, "loss": "l1", "batching": batching}
    return DimeNetPPAdapter(get_task("qm9_u0").spec, hp, args.device, seed=0)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_steps(adapter: DimeNetPPAdapter, molecules, steps: int, prebuilt: list | None, device: str,
                network=None) -> float:
    """Seconds for ``steps`` training steps over the first batches of ``molecules``."""
    network = network if network is not None else adapter.network
    optimizer = torch.optim.Adam(adapter.network.parameters(), lr=1e-4)
    batches = prebuilt if prebuilt is not None else None
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        if batches is None:
            z, pos, index, n, padded, _ = next(adapter._batches(molecules[step * adapter.hp["batch_size"]:], False))
        else:
            z, pos, index, n, padded, _ = batches[step % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        if network is adapter.network:
            out = adapter._forward(z, pos, index, n, padded)
        else:
            out = compiled_forward(adapter, network, z, pos, index, n, padded)
        out.abs().mean().backward()
        optimizer.step()
    sync(device)
    return time.perf_counter() - start


def compiled_forward(adapter, network, z, pos, index, n, padded):
    from dimenetpp_adapter.adapter import given_graph

    if padded is None:
        return network(z.to(adapter.device), pos.to(adapter.device), index.to(adapter.device)).view(-1)
    moved = {k: (v.to(adapter.device) if torch.is_tensor(v) else tuple(t.to(adapter.device) for t in v))
             for k, v in padded.items()}
    with given_graph(moved):
        return network(moved["z"], moved["pos"], moved["batch"]).view(-1)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xyz", default=str(REPO / "data" / "qm9_subset" / "qm9_reduced_100.xyz"))
    parser.add_argument("--molecules", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    molecules = qm9.read_molecules(Path(args.xyz))[: args.molecules]
    n_batches = len(molecules) // args.batch_size
    steps = min(args.steps, n_batches)
    print(f"DimeNet++ static vs dynamic shapes: {len(molecules)} QM9 molecules ({args.xyz}), batch {args.batch_size}, "
          f"{steps} steps, hidden {args.hidden}, {args.blocks} blocks, device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    forms = {name: adapter_for(args, name) for name in ("dynamic", "padded")}
    forms["padded"].network.load_state_dict(forms["dynamic"].network.state_dict())
    for adapter in forms.values():
        adapter._elements = sorted({site.specie.Z for s in molecules for site in s.structure})
        adapter._references = np.zeros(len(adapter._elements))
        adapter._sizes = adapter._molecule_sizes(molecules)
    atoms, edges, trips = forms["padded"]._sizes
    real = [next(forms["dynamic"]._batches(molecules[k * args.batch_size:], False)) for k in range(steps)]
    real_atoms = np.mean([b[0].numel() for b in real])
    print(f"padded batch: {args.batch_size * atoms + 3} atoms (largest molecule {atoms} x {args.batch_size} + 3 filler), "
          f"{args.batch_size * edges + 2} edges, {args.batch_size * trips + 1} triplets; "
          f"dynamic batches average {real_atoms:.1f} atoms")

    # agreement: predictions and one step's gradient from the same weights
    blind = [dataclasses.replace(s, target=None) for s in molecules]
    predictions = {name: adapter.predict(blind) for name, adapter in forms.items()}
    grads = {}
    for name, adapter in forms.items():
        adapter.network.zero_grad()
        z, pos, index, n, padded, _ = next(adapter._batches(molecules, False))
        adapter._forward(z, pos, index, n, padded).sum().backward()
        grads[name] = torch.cat([p.grad.flatten() for p in adapter.network.parameters() if p.grad is not None])
    print(f"agreement: max |prediction difference| {np.max(np.abs(predictions['padded'] - predictions['dynamic'])):.3g} eV "
          f"over {len(blind)} molecules; max |gradient difference| "
          f"{float((grads['padded'] - grads['dynamic']).abs().max()):.3g} "
          f"(largest gradient entry {float(grads['dynamic'].abs().max()):.3g})")

    prebuilt = {name: [next(a._batches(molecules[k * args.batch_size:], False)) for k in range(steps)]
                for name, a in forms.items()}
    modes = [("with graph construction", None), ("network only", prebuilt)]
    for label, built in modes:
        times = {"dynamic": [], "padded": []}
        for name in times:  # warm-up
            timed_steps(forms[name], molecules, 1, built[name][:1] if built else None, args.device)
        for _ in range(args.repeats):
            for name in times:
                times[name].append(timed_steps(forms[name], molecules, steps, built[name] if built else None, args.device))
        rate = {name: steps * args.batch_size / statistics.median(t) for name, t in times.items()}
        print(f"{label}: dynamic {rate['dynamic']:.1f} molecules/s, padded {rate['padded']:.1f} molecules/s, "
              f"padded/dynamic throughput ratio {rate['padded'] / rate['dynamic']:.3f} "
              f"(median of {args.repeats}; per repeat s: dynamic {', '.join(f'{t:.2f}' for t in times['dynamic'])}; "
              f"padded {', '.join(f'{t:.2f}' for t in times['padded'])})")

    if args.compile:
        for name in ("padded", "dynamic"):
            adapter = forms[name]
            compiled = torch.compile(adapter.network, dynamic=False)
            start = time.perf_counter()
            first = timed_steps(adapter, molecules, steps, prebuilt[name], args.device, compiled)
            again = [timed_steps(adapter, molecules, steps, prebuilt[name], args.device, compiled)
                     for _ in range(args.repeats)]
            print(f"torch.compile(dynamic=False), {name}: first pass {first:.1f} s (compiling), then "
                  f"{steps * args.batch_size / statistics.median(again):.1f} molecules/s; total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
