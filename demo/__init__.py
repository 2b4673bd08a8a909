"""The demo: rendered traffic scenes with planted label errors (``scenes``), synthetic COCO
sets for tests and benchmarks (``synthetic``) and the main job (``runner``)."""
