"""Deployment of trained runs: checkpoint loading (:mod:`.checkpoint`), the per-task network and
input description (:mod:`.spec`) and ONNX export (:mod:`.export`).

Submodules are imported where used: ``import sleepbench.deploy`` pulls in neither torch nor onnx.
"""
