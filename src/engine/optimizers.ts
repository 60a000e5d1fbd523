/**
 * Optimizers with torch.optim's update rules (torch 1.13 single-tensor path), so a TS node and a Python node given
 * the same gradients take the same step:
 * - SGD: g += wd*p; buf = g (first step) or momentum*buf + (1-dampening)*g; g = nesterov ? g + momentum*buf : buf;
 *   p -= lr*g.
 * - Adam: g += wd*p (L2, not decoupled); m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * - AdamW: as Adam with p *= 1 - lr*wd before the step and no L2 term.
 * State lives for one training round (Fed-BioMed builds a fresh optimizer per round); dispose() frees it.
 * With the native kernels, Adam's step per parameter is one kernel (kernels/adam-native.ts) with the same float32
 * operations as the composed one, so the same bits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAM_UPDATE, AdamUpdateAttrs } from './kernels/adam-native';

type OptimizerName = 'SGD' | 'Adam' | 'AdamW';

export interface OptimizerSpec {
  // eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- names the known ones for readers
  name: OptimizerName | string;
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
}

export interface Optimizer {
  /** Applies one update to every variable that has a gradient. */
  step(grads: Map<tf.Variable, tf.Tensor>): void;
  dispose(): void;
}

function positive(name: string, v: number, allowZero = true): number {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(`optimizer ${name} must be ${allowZero ? 'non-negative' : 'positive'}, got ${v}`);
  }
  return v;
}

export function makeOptimizer(spec: OptimizerSpec): Optimizer {
  const name = spec.name.toLowerCase();
  const lr = positive('lr', spec.lr);
  const wd = positive('weight_decay', spec.weightDecay ?? 0);
  if (name === 'sgd') {
    const momentum = positive('momentum', spec.momentum ?? 0);
    const dampening = positive('dampening', spec.dampening ?? 0);
    const nesterov = spec.nesterov ?? false;
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new Error('optimizer SGD: nesterov momentum requires a momentum and zero dampening');
    }
    return new Sgd(lr, momentum, dampening, nesterov, wd);
  }
  if (name === 'adam' || name === 'adamw') {
    const [b1, b2] = spec.betas ?? [0.9, 0.999];
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`optimizer Adam: betas must be in [0,1), got ${b1},${b2}`);
    return new Adam(lr, b1, b2, positive('eps', spec.eps ?? 1e-8), wd, name === 'adamw');
  }
  throw new Error(`unknown optimizer '${spec.name}'; expected SGD, Adam or AdamW`);
}

class Sgd implements Optimizer {
  private readonly buffers = new Map<tf.Variable, tf.Tensor>();

  constructor(
    private readonly lr: number,
    private readonly momentum: number,
    private readonly dampening: number,
    private readonly nesterov: boolean,
    private readonly weightDecay: number,
  ) {}

  step(grads: Map<tf.Variable, tf.Tensor>): void {
    for (const [variable, grad] of grads) {
      const next = tf.tidy(() => {
        let g = this.weightDecay !== 0 ? tf.add(grad, tf.mul(variable, this.weightDecay)) : grad;
        if (this.momentum !== 0) {
          const old = this.buffers.get(variable);
          const buf = old
            ? tf.add(tf.mul(old, this.momentum), tf.mul(g, 1 - this.dampening))
            : tf.clone(g);
          old?.dispose();
          this.buffers.set(variable, tf.keep(buf));
          g = this.nesterov ? tf.add(g, tf.mul(buf, this.momentum)) : buf;
        }
        return tf.sub(variable, tf.mul(g, this.lr));
      });
      variable.assign(next);
      next.dispose();
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

class Adam implements Optimizer {
  private readonly moments = new Map<tf.Variable, { m: tf.Tensor; v: tf.Tensor }>();
  private t = 0;

  constructor(
    private readonly lr: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly eps: number,
    private readonly weightDecay: number,
    private readonly decoupled: boolean,
  ) {}

  step(grads: Map<tf.Variable, tf.Tensor>): void {
    this.t += 1;
    const bc1 = 1 - Math.pow(this.beta1, this.t);
    const sqrtBc2 = Math.sqrt(1 - Math.pow(this.beta2, this.t));
    const stepSize = this.lr / bc1;
    const fused = tf.getBackend() === 'wasm' && tf.getKernel(ADAM_UPDATE, 'wasm') !== undefined;
    for (const [variable, grad] of grads) {
      if (fused && variable.dtype === 'float32' && grad.dtype === 'float32') {
        this.fusedStep(variable, grad, { beta1: this.beta1, beta2: this.beta2, sqrtBiasCorrection2: sqrtBc2, eps: this.eps,
          stepSize, weightDecay: this.weightDecay, decay: 1 - this.lr * this.weightDecay,
          mode: this.weightDecay === 0 ? 'none' : this.decoupled ? 'decoupled' : 'l2' });
        continue;
      }
      const next = tf.tidy(() => {
        let p: tf.Tensor = variable;
        let g = grad;
        if (this.weightDecay !== 0) {
          if (this.decoupled) p = tf.mul(p, 1 - this.lr * this.weightDecay);
          else g = tf.add(g, tf.mul(variable, this.weightDecay));
        }
        const old = this.moments.get(variable);
        const m = old ? tf.add(tf.mul(old.m, this.beta1), tf.mul(g, 1 - this.beta1)) : tf.mul(g, 1 - this.beta1);
        const v = old
          ? tf.add(tf.mul(old.v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2))
          : tf.mul(tf.square(g), 1 - this.beta2);
        if (old) {
          old.m.dispose();
          old.v.dispose();
        }
        this.moments.set(variable, { m: tf.keep(m), v: tf.keep(v) });
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), this.eps);
        return tf.sub(p, tf.mul(tf.div(m, denom), stepSize));
      });
      variable.assign(next);
      next.dispose();
    }
  }

  /** The same step as one native kernel (see the file comment). */
  private fusedStep(variable: tf.Variable, grad: tf.Tensor, attrs: AdamUpdateAttrs): void {
    const old = this.moments.get(variable);
    const inputs: tf.NamedTensorMap = old ? { p: variable, g: grad, m: old.m, v: old.v } : { p: variable, g: grad };
    const [next, m, v] = tf.engine().runKernel<tf.Tensor[]>(ADAM_UPDATE, inputs, attrs as unknown as tf.NamedAttrMap);
    if (old) {
      old.m.dispose();
      old.v.dispose();
    }
    this.moments.set(variable, { m: tf.keep(m), v: tf.keep(v) });
    variable.assign(next);
    next.dispose();
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.moments.clear();
  }
}
