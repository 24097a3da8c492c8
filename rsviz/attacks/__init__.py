"""Decision-based attacks against f or g_{σ,n}, reached only through an `Oracle`."""
