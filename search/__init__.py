"""CLIP search: model settings (``clip_spec``), embeddings of images and object patches
(``embeddings``) and similarity indexes (``index``). The only layer that imports torch and
open_clip; built on ``datasets``."""
