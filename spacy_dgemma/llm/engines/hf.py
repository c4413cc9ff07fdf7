"""The ``hf`` engine: a Hugging Face causal LM in this process, with the document-prefix KV cache."""
from typing import Iterator, Optional, Sequence, Tuple

from spacy_dgemma.llm.engines import Engine, EngineOptions, GenerationSettings, PromptGroup
from spacy_dgemma.llm.generate import Generation, PrefixCachedGenerator


class HFEngine(Engine):
    """Greedy (or sampled) decoding with ``PrefixCachedGenerator``, one document at a time.

    model / tokenizer: a loaded causal LM (or PEFT model) and its tokenizer.
    settings: default decoding settings. batch_size: pairs of a document decoded together.
    cache_prefix: reuse the document prefix's KV cache (default) instead of one full prompt per pair.
    identity: what identifies the weights (for cache keys; see ``model_identity``).
    """

    kind = "hf"

    def __init__(self, model, tokenizer, settings: GenerationSettings, batch_size: int = 8,
                 cache_prefix: bool = True, identity: str = "") -> None:
        super().__init__(tokenizer, settings, identity)
        self.model = model
        self.batch_size = batch_size
        self.cache_prefix = cache_prefix

    @classmethod
    def load(cls, options: EngineOptions, settings: GenerationSettings, tokenizer, identity: str) -> "HFEngine":
        """Load the weights (and adapter) that `options` name (`tokenizer` / `identity`: from `open_engine`)."""
        from spacy_dgemma.llm.loading import load_model

        model = load_model(options.model, dtype=options.dtype, device=options.device, load_in_4bit=options.load_in_4bit,
                           adapter=options.adapter, attn_implementation=options.attn_implementation)
        return cls(model, tokenizer, settings, batch_size=options.batch_size, cache_prefix=options.cache_prefix,
                   identity=identity)

    def generate(self, groups: Sequence[PromptGroup], watch_ids: Sequence[int],
                 settings: Optional[GenerationSettings] = None) -> Iterator[Tuple[int, int, Generation]]:
        settings = self.effective(settings)
        generator = PrefixCachedGenerator(self.model, self.tokenizer, settings.max_new_tokens, self.batch_size,
                                          watch_ids, temperature=settings.temperature, seed=settings.seed)
        run = generator.generate_cached if self.cache_prefix else generator.generate_naive
        for g, group in enumerate(groups):
            for i, generation in enumerate(run(group.prefix, group.suffixes, self.stats)):
                yield g, i, generation

    def describe(self) -> str:
        device = next(self.model.parameters()).device
        return f"hf ({device}, {'prefix cache' if self.cache_prefix else 'one prompt per pair'}, batch {self.batch_size})"
