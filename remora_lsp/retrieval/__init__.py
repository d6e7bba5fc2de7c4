"""The semantic layer: embeddings, the two-stage vector index, chunking and type inference.

``embedding`` wraps the embedding backends behind one protocol; ``index`` is the two-stage
FAISS index (binary fast tier, float16 memory-mapped precise tier) and the merged search over
several of them; ``chunkers`` cuts code, documentation and usage windows out of tree-sitter
trees; ``types`` infers a name's type from its usages; ``service`` is the object the server
holds. Nothing here imports pygls, lsprotocol or ``remora_lsp.server``, and numpy, FAISS,
torch and sentence-transformers are imported only inside the functions that use them.
"""
