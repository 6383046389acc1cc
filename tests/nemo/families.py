"""Tiny configs of NeMo's transducer families, from the recipe's tiny Conformer-CTC config.

Layouts follow NeMo's examples/asr/conf/fastconformer (transducer, hybrid, TDT, hybrid TDT-CTC), scaled down.
"""
from omegaconf import OmegaConf

MODELS = "nemo.collections.asr.models."
TARGETS = {
    "ctc": MODELS + "EncDecCTCModelBPE",
    "rnnt": MODELS + "EncDecRNNTBPEModel",
    "hybrid": MODELS + "EncDecHybridRNNTCTCBPEModel",
    "tdt": MODELS + "EncDecRNNTBPEModel",
    "hybrid_tdt": MODELS + "EncDecHybridRNNTCTCBPEModel",
}
DURATIONS = [0, 1, 2, 3, 4]


def transducer(d_model):
    return {
        "model_defaults": {"enc_hidden": d_model, "pred_hidden": 16, "joint_hidden": 16},
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": 16, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.0}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None,
                  "preserve_memory": False, "fuse_loss_wer": False, "fused_batch_size": -1,
                  "jointnet": {"joint_hidden": 16, "activation": "relu", "dropout": 0.0}},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 5}},
        "loss": {"loss_name": "default"},
    }


def family_cfg(ctc_cfg, family):
    """``ctc_cfg`` (a resolved model config) turned into ``family``'s, with its ``target``."""
    cfg = OmegaConf.create(OmegaConf.to_container(ctc_cfg, resolve=True))
    cfg.target = TARGETS[family]
    if family == "ctc":
        return cfg
    ctc_decoder = cfg.pop("decoder")
    cfg.merge_with(transducer(cfg.encoder.d_model))
    if family in ("hybrid", "hybrid_tdt"):
        cfg.aux_ctc = {"ctc_loss_weight": 0.3, "use_cer": False, "ctc_reduction": "mean_batch",
                       "decoder": {**ctc_decoder, "num_classes": -1, "vocabulary": []},
                       "decoding": {"strategy": "greedy"}}
    if family in ("tdt", "hybrid_tdt"):
        cfg.joint.num_extra_outputs = len(DURATIONS)
        cfg.decoding.model_type = "tdt"
        cfg.decoding.durations = DURATIONS
        cfg.loss = {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1}}
    return cfg
