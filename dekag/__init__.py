"""dekag: the learned knowledge. Miniature and real-scale LDMs, MAKD (metaword + G-LoRA), JSCC with
CALA, training channel, knowledge package, metrics. Knows nothing about SDRs: a channel is a
differentiable function of complex symbols and a condition (SNR dB, delay spread s).
"""
