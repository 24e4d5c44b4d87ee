"""Transaction engines (UB 2.0 ch. 7): initiator, target and the memory they act on."""
