"""The default PicoGPT run on Tiny Shakespeare: 418,304 parameters, 8000 iterations (62 min on 2 CPU cores).

Every setting of this run is a default of tf_train.py (training) and tf_model.config.PicoGPTConfig
(model), so this file sets nothing; copy it to start a variant and list only what differs.
"""
