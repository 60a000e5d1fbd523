import {
  accuracy, binaryConfusion, explainedVariance, fedbiomedMetric, meanAbsoluteError, meanSquaredError,
  precisionRecallF1, predictedLabels, rocAuc, rocCurve, sensitivity, specificity,
} from './metrics';

describe('metrics (values from scikit-learn documentation examples)', () => {
  it('roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75 and ties count one half', () => {
    expect(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBeCloseTo(0.75, 12);
    expect(rocAuc([0, 1], [0.5, 0.5])).toBeCloseTo(0.5, 12);
    expect(rocAuc([1, 1], [0.2, 0.3])).toBeNaN();
    const curve = rocCurve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    expect(curve.fpr).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(curve.tpr).toEqual([0, 0.5, 0.5, 1, 1]);
  });

  it('confusion, sensitivity and specificity', () => {
    const c = binaryConfusion([1, 1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0, 0]);
    expect(c).toEqual({ tp: 2, fn: 1, fp: 1, tn: 3 });
    expect(sensitivity(c)).toBeCloseTo(2 / 3, 12);
    expect(specificity(c)).toBeCloseTo(3 / 4, 12);
  });

  it('precision/recall/F1: binary uses class 1, multi-class is support-weighted', () => {
    expect(precisionRecallF1([0, 1, 1, 0], [0, 1, 0, 1])).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5 });
    // sklearn f1_score([0,1,2,0,1,2],[0,2,1,0,0,1], average='weighted') = 0.26666…
    expect(precisionRecallF1([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]).f1).toBeCloseTo(0.26666666666666666, 12);
  });

  it('regression metrics', () => {
    // sklearn examples: y_true=[3,-0.5,2,7], y_pred=[2.5,0.0,2,8]
    expect(meanSquaredError([3, -0.5, 2, 7], [2.5, 0, 2, 8])).toBeCloseTo(0.375, 12);
    expect(meanAbsoluteError([3, -0.5, 2, 7], [2.5, 0, 2, 8])).toBeCloseTo(0.5, 12);
    expect(explainedVariance([3, -0.5, 2, 7], [2.5, 0, 2, 8])).toBeCloseTo(0.9571734475374732, 12);
  });

  it('labels from scores and the Fed-BioMed names', () => {
    expect(predictedLabels([0.2, 0.7, 0.5], 1)).toEqual([0, 1, 1]);
    expect(predictedLabels([0.1, 0.9, 0.8, 0.2], 2)).toEqual([1, 0]);
    expect(accuracy([1, 0], [1, 1])).toBe(0.5);
    expect(fedbiomedMetric('ACCURACY', [1, 0, 1], [0.9, 0.1, 0.4], 1)).toBeCloseTo(2 / 3, 12);
    expect(() => accuracy([1], [1, 0])).toThrow(/differ in length/);
  });
});
