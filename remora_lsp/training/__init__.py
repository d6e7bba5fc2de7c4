"""The training pipeline (``remora train``): a repository and its docs in, a signed pack out.

Stages, each its own module, each resumable from the run's work folder:

* :mod:`~remora_lsp.training.source` resolves SOURCE (a folder, a git URL, an installed
  distribution) and :mod:`~remora_lsp.training.repowalker` finds its functions, methods and
  classes and picks the golden snippets (covered by tests, documented, sane size, unique).
* :mod:`~remora_lsp.training.docscraper` chunks Markdown, reStructuredText and built HTML docs
  (local folders, or a site crawled politely) into sections with their heading path.
* :mod:`~remora_lsp.training.pairs` mines retrieval pairs and
  :mod:`~remora_lsp.training.embedding_tune` fine-tunes the search embedding with a Matryoshka
  loss, measuring MRR@10 before and after at each dimension.
* :mod:`~remora_lsp.training.lora` trains the generation and transform LoRA adapters and
  :mod:`~remora_lsp.training.evaluate` measures them against the base model.
* :mod:`~remora_lsp.training.pipeline` runs the stages, :mod:`~remora_lsp.training.assemble`
  builds the pack, :mod:`~remora_lsp.training.report` writes the run report (the pack's card).

Heavy libraries (torch, transformers, peft, sentence-transformers) are imported inside the
functions that use them.
"""
