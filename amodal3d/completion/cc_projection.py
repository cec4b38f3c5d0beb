"""pix2gestalt's ``cc_projection`` as a diffusers model (own config and safetensors weights in its subfolder)."""

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config


class CCProjection(ModelMixin, ConfigMixin):
    """Linear(dim, dim) on the CLIP image embedding, initialised to the identity as in the original."""

    @register_to_config
    def __init__(self, dim: int = 768):
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(embedding)
