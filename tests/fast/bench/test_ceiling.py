"""bench/ceiling.py: the encoder FLOP formula behind make bench's compute-ceiling lines matches what torch
counts for a real BERT forward pass, and the ceiling lines are derived from the measured times."""
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertModel

from bench.ceiling import encoder_flops, report


def test_encoder_flops_match_torch_flop_counter():
    cfg = BertConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                     vocab_size=100, max_position_embeddings=64, attn_implementation="eager")
    model = BertModel(cfg, add_pooling_layer=False).eval()
    for n in (7, 33):
        ids = torch.randint(0, 100, (1, n))
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        assert encoder_flops([n], cfg) == fc.get_total_flops()
    assert encoder_flops([7, 33], cfg) == encoder_flops([7], cfg) + encoder_flops([33], cfg)


def test_report_ceiling_is_peak_over_naive_rate():
    lines = report(flops=100e9, seconds={"naive": 2.0, "batched": 1.0}, peak=200.0)
    assert "50.0 GFLOP/s = 25.0% of peak" in lines[1]
    assert "100.0 GFLOP/s = 50.0% of peak" in lines[2]
    assert lines[-1].endswith("4.00x the naive loop")
