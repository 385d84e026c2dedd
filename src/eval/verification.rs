//! Face verification from pair similarities: accuracy at the best threshold, ROC AUC and the
//! true-accept rate at a fixed false-accept rate.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Summary of a verification run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Fraction of pairs classified right at the best single threshold.
    pub accuracy: f64,
    /// That threshold (same identity when similarity >= threshold).
    pub threshold: f64,
    /// Area under the ROC curve (ties count one half).
    pub auc: f64,
    /// True-accept rate when at most `far` of the different-identity pairs are accepted.
    pub tar: f64,
    pub far: f64,
    pub same_pairs: usize,
    pub different_pairs: usize,
}

/// `pairs`: (similarity, same identity). Needs both kinds of pair.
pub fn verify(pairs: &[(f64, bool)], far: f64) -> Result<VerificationReport> {
    let mut positives: Vec<f64> = pairs.iter().filter(|p| p.1).map(|p| p.0).collect();
    let mut negatives: Vec<f64> = pairs.iter().filter(|p| !p.1).map(|p| p.0).collect();
    if positives.is_empty() || negatives.is_empty() || pairs.iter().any(|p| !p.0.is_finite()) {
        return Err(Error::Invalid(format!(
            "verification needs finite similarities for both same and different pairs ({} same, {} different)",
            positives.len(),
            negatives.len()
        )));
    }
    positives.sort_by(f64::total_cmp);
    negatives.sort_by(f64::total_cmp);
    let (np, nn) = (positives.len() as f64, negatives.len() as f64);

    // Mann-Whitney U over sorted lists.
    let mut wins = 0.0;
    let (mut lo, mut hi) = (0usize, 0usize);
    for &p in &positives {
        while lo < negatives.len() && negatives[lo] < p {
            lo += 1;
        }
        hi = hi.max(lo);
        while hi < negatives.len() && negatives[hi] <= p {
            hi += 1;
        }
        wins += lo as f64 + 0.5 * (hi - lo) as f64;
    }
    let auc = wins / (np * nn);

    // Best accuracy: try every distinct score as the threshold (and one above all).
    let mut candidates: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    candidates.push(f64::INFINITY);
    let count_at_least = |sorted: &[f64], t: f64| sorted.len() - sorted.partition_point(|&v| v < t);
    let (mut accuracy, mut threshold) = (0.0, f64::NAN);
    for &t in &candidates {
        let correct =
            count_at_least(&positives, t) + (negatives.len() - count_at_least(&negatives, t));
        let acc = correct as f64 / (np + nn);
        if acc > accuracy {
            accuracy = acc;
            threshold = t;
        }
    }

    // Accept when similarity exceeds the (k+1)-th highest negative: at most k false accepts.
    let k = (far * nn).floor() as usize;
    let bar = negatives[negatives.len() - 1 - k.min(negatives.len() - 1)];
    let tar = positives.iter().filter(|&&p| p > bar).count() as f64 / np;
    Ok(VerificationReport {
        accuracy,
        threshold,
        auc,
        tar,
        far,
        same_pairs: positives.len(),
        different_pairs: negatives.len(),
    })
}

/// Cosine similarity of two embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_are_perfect() {
        let pairs = [(0.9, true), (0.8, true), (0.3, false), (0.1, false)];
        let r = verify(&pairs, 0.01).unwrap();
        assert_eq!((r.accuracy, r.auc, r.tar), (1.0, 1.0, 1.0));
        assert!(r.threshold > 0.3 && r.threshold <= 0.8);
    }

    #[test]
    fn overlapping_scores() {
        // Positives 0.2, 0.6, 0.9; negatives 0.1, 0.6, 0.7. Pairs won: 0.2 beats 1, 0.6 beats 1
        // and ties 1, 0.9 beats 3: (1 + 1.5 + 3) / 9.
        let pairs = [
            (0.2, true),
            (0.6, true),
            (0.9, true),
            (0.1, false),
            (0.6, false),
            (0.7, false),
        ];
        let r = verify(&pairs, 0.34).unwrap();
        assert!((r.auc - 5.5 / 9.0).abs() < 1e-12);
        // Best threshold 0.2 or 0.9: 4 of 6 right.
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // FAR 0.34 of 3 negatives allows one false accept: accept above 0.6 -> TAR 1/3.
        assert!((r.tar - 1.0 / 3.0).abs() < 1e-12);
        assert!(verify(&[(0.5, true)], 0.01).is_err());
    }

    #[test]
    fn cosine_of_parallel_and_orthogonal() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
    }
}
