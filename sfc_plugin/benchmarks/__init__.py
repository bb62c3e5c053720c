"""Benchmarks (the top layer, README, Layout): the modules that measure speed, memory and accuracy for the ``tools/``
scripts; nothing else in the package imports them.

- :mod:`.propagation`: the propagation core against its dense reference (``tools/benchmark_propagation.py``);
- :mod:`.runtime`: ``sfc-propagate`` end to end per backend, next to its core (``tools/benchmark_runtime.py``);
- :mod:`.device_check`: the whole GPU path in one report (``tools/device_check.py``);
- :mod:`.backbones`: ms per frame of each config's feature network (``tools/benchmark_backbones.py``);
- :mod:`.pairs`: PCK of pair configs x matchers, and nearest-neighbour PCK of any configs' features on a real
  stereo pair (``tools/benchmark_pairs.py``, ``--stereo``);
- :mod:`.vos`: J&F of label-propagation configs as a result record (``tools/benchmark_vos.py``);
- :mod:`.train`: training throughput (``tools/benchmark_train.py``);
- :mod:`.common`: what every report shares (the CPU it ran on, a fresh process per measurement).

The metrics they report live in :mod:`sfc_plugin.evaluation` and :mod:`sfc_plugin.correspondence`, the data
they run on comes from :mod:`sfc_plugin.generators`; they may import any other part of ``sfc_plugin``.
The submodules are not imported here (some need onnxruntime or scikit-image); import the one you run.
"""
