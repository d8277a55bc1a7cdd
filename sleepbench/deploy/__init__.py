"""Deployment of trained runs: checkpoint loading (:mod:`.checkpoint`), the per-task network and
input description (:mod:`.spec`), ONNX export (:mod:`.export`), one model behind one call from a
checkpoint or an ONNX file (:mod:`.model`), prediction of one recording (:mod:`.predict`), the
night report (:mod:`.report`, :mod:`.timeline_svg`) and the REST service (:mod:`.serve`).

Submodules are imported where used: ``import sleepbench.deploy`` pulls in neither torch nor onnx.
"""
