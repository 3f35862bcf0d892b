"""What a model costs, measured one way everywhere: metrics.py (parameters, nonzeros, MACs, bytes),
latency.py (the one latency protocol), latency_protocol.py (its constants, torch-free), compile.py
(torch.compile for the CPU, for int8 kernels), pareto.py (the runs no other run beats)."""
