"""Vision-language-action policies: offline pretrained encoders, transformers fusion, action heads."""
