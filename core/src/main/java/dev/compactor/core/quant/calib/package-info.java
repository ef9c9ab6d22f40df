/**
 * Layer-by-layer calibration: {@link dev.compactor.core.quant.calib.CalibrationCollector} streams a
 * checkpoint one decoder layer at a time, collects {@link
 * dev.compactor.core.quant.calib.LinearStats} (X^T X, mean |X|, sum X^2) of every linear's inputs
 * and hands each layer to a {@link dev.compactor.core.quant.calib.LayerQuantizer}; each layer runs
 * through the model's own decoder layer, and {@link dev.compactor.core.quant.calib.LinearGroups}
 * says which linears of a family read which input.
 */
package dev.compactor.core.quant.calib;
