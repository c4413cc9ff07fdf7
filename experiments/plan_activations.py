"""Check the memory plan's activation estimate against the tensors a real forward pass saves.

Builds a Gemma 4 text model with the real layer widths of a published config (two decoder layers:
one sliding-window, one full-attention; a small vocabulary), in bf16 on CPU, puts the stage's LoRA
adapter on it exactly as training does (``sft.add_lora``, no gradient checkpointing so that every
saved tensor is counted), runs one forward pass on `--tokens` tokens, and sums the distinct
storages that autograd saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``).
Prints measured bytes per token per layer next to the plan's estimate (``plan._layer_bytes_per_token``).

    python experiments/plan_activations.py ../shared/gemma4-configs/gemma-4-26B-A4B-it --hparams teacher
"""
import argparse
import json

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_dir")
    parser.add_argument("--hparams", default="teacher")
    parser.add_argument("--tokens", type=int, nargs=2, default=[256, 512])
    args = parser.parse_args()

    from transformers import AutoConfig, Gemma4ForCausalLM

    from spacy_dgemma.llm.plan import (
        ACTIVATION_MARGIN,
        _decoder_layers,
        _expert_bytes,
        _layer_bytes_per_token,
        lora_parameters,
    )
    from spacy_dgemma.llm.sft import LoraHyperparams, add_lora

    text = AutoConfig.from_pretrained(args.config_dir).get_text_config()
    config = text.to_dict()
    kinds = sorted(set(text.layer_types), reverse=True)  # sliding first
    config.update(num_hidden_layers=len(kinds), layer_types=kinds, vocab_size=1024, vocab_size_per_layer_input=1024,
                  num_kv_shared_layers=0)
    config.pop("per_layer_config", None)
    config = type(text)(**{k: v for k, v in config.items() if k not in ("transformers_version", "architectures")})
    hp = LoraHyperparams.from_file(args.hparams, gradient_checkpointing=False)
    # The plan's estimate, computed as plan_memory does: on a meta copy, adapted modules from peft.
    with torch.device("meta"):
        meta = Gemma4ForCausalLM(config).to(torch.bfloat16)
    adapted = {m.split(".layers.", 1)[-1].split(".", 1)[-1] for m in lora_parameters(meta, hp)["adapted_modules"]}
    top_k = getattr(text, "top_k_experts", None) or 0
    layers = _decoder_layers(meta)
    estimates = [_layer_bytes_per_token(layer, adapted, top_k, text.hidden_size) for _, layer in layers]
    expert_stack = max(_expert_bytes(layer) for _, layer in layers)

    torch.manual_seed(0)
    peft_model = add_lora(Gemma4ForCausalLM(config).to(torch.bfloat16), hp)
    peft_model.train()
    weights = {p.untyped_storage().data_ptr() for p in peft_model.parameters()}

    def saved_bytes(tokens: int) -> int:
        storages = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        ids = torch.randint(4, 1024, (1, tokens))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = peft_model(input_ids=ids, logits_to_keep=1)
        out.logits.float().sum().backward()
        # The parameters and LoRA weights are saved too, but are no activations: leave them out.
        return sum(n for ptr, n in storages.items() if ptr not in weights)

    short, long = args.tokens
    small, large = saved_bytes(short), saved_bytes(long)
    per_token = (large - small) / (long - short) / len(layers)
    per_layer = (small - per_token * short * len(layers)) / len(layers)
    print(json.dumps({
        "config": args.config_dir, "tokens": args.tokens, "layers": kinds,
        "measured_bytes_per_token_per_layer": round(per_token),
        "plan_bytes_per_token_per_layer": [round(e) for e in estimates],
        "formula_without_margin": [round(e / ACTIVATION_MARGIN) for e in estimates],
        "ratio_formula_to_measured": round(max(estimates) / ACTIVATION_MARGIN / per_token, 2),
        "ratio_plan_to_measured": round(max(estimates) / per_token, 2),
        "measured_bytes_per_layer_not_growing_with_tokens": round(per_layer),
        "plan_expert_stack_bytes_per_layer": expert_stack,
    }, indent=2))


if __name__ == "__main__":
    main()
