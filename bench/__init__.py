"""Benchmarks of semirad against PyTorch and HIPS autograd: ``python -m bench [--quick]``.

The five experiments of the gradient-tracing scaling study (time vs layers, batch, width, random
graph size, and a matrix-vector product), each timed for semirad backprop, semirad trace, PyTorch
backprop and HIPS autograd backprop (CUDA/cupy columns where a device exists), plus the peak
memory of a trace against backprop. Results go to ``bench/results/`` as JSON, plots and a markdown
table. ``python -m bench.before_after`` measures what each optimization changed.
"""
