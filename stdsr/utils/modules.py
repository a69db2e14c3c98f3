"""Small facts about torch modules that reports need."""


def count_parameters(net):
    """Number of parameters of ``net`` (trainable or not), as VSR tables report it."""
    return int(sum(p.numel() for p in net.parameters()))
