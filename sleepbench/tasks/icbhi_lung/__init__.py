"""icbhi_lung: respiratory-cycle classification (normal/crackle/wheeze/both) on ICBHI 2017 lung sounds."""
