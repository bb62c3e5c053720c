# The default fused model on pfwillow under CATs' PCK protocol (images resized to 256 x 256, target keypoints
# transferred to the source, thresholds from the source), for comparison with CATs / SemiMatch tables.
_base_ = ['./sfc_effl0-r18-fc_pfwillow.py']
model = dict(protocol='cats', max_side=None)
