"""What every number on the pages means: one short explanation per label (what it measures,
its range and which way is better, and where the method comes from, in plain words).

:func:`explain` finds a label's explanation (labels that carry a count or a name after a
fixed start are matched by that start); ``widgets.stat`` and the tables show it as a
tooltip with an info mark. tests/e2e/test_first_contact.py checks that every number label
on every page has one and that no page says "seed".
"""

from __future__ import annotations

EXPLANATIONS: dict[str, str] = {
    # -- model summaries
    "classes": "How many classes: rows of the classifier's last layer (its head).",
    "features per class": "How many weights each class's head row has (D): one per feature "
                          "channel the head reads.",
    "weights per class": "How many weights each class's head row has (D): one per feature "
                         "channel the head reads.",
    "class names": "Where the class names come from (a list shipped with the model, a file "
                   "given to the server, or plain numbers).",
    "score": "How two classes are compared: cosine of their standardised head rows (−1 to 1, "
             "higher = more alike; the same numbers as Pearson correlation) or Euclidean "
             "distance of those rows (0 up, lower = more alike).",
    "tree": "The linkage that builds the dendrogram from the head rows (Ward: each merge adds "
            "the least within-cluster variance; average/complete/single: mean, largest or "
            "smallest distance between the two groups).",
    "analysis": "Whether this analysis was read from the result cache or computed now, and "
                "how long that took.",
    "fits": "Whether the per-class fits were read from the result cache or computed now.",
    # -- selection panel (Classes)
    "cohesion (mean cosine within)": "Mean cosine similarity over every pair of the selected "
                                     "classes (−1 to 1; higher = their head rows are more "
                                     "alike).",
    "mean distance within": "Mean Euclidean distance over every pair of the selected classes' "
                            "standardised head rows (0 up; lower = more alike).",
    "merge height": "Height at which the dendrogram joins this subtree: the linkage's "
                    "distance at that merge (lower = its classes joined earlier, i.e. are "
                    "more alike).",
    "clusters touched": "How many clusters of the current cut hold at least one selected "
                        "class (1 = the selection lies inside one cluster).",
    "agreement with WordNet": "Spearman rank correlation between distances in this tree and "
                              "in WordNet's noun hierarchy (−1 to 1; higher = the classifier "
                              "groups classes more as WordNet does).",
    "WordNet name": "The most specific WordNet concept that covers most of the subtree's "
                    "classes, and the share of its classes under it.",
    "purity": "Share of the subtree's classes that fall under its best-matching WordNet "
              "concept (0 to 1; higher = a cleaner concept).",
    # -- weight distributions
    "pooled R²": "R² of the straight-line regression from the weight-distribution write-up "
                 "(log of sorted weights against their rank), fitted to all weights at once, "
                 "positive and negative sides (0 to 1; higher = the line fits better).",
    "zero weights": "Weights exactly 0: left out of the regression, since log 0 is undefined.",
    "classes with a status": "Classes whose fits could not be made in full (for example a "
                             "side with too few weights); the list says why.",
    "MLE κ": "Asymmetry κ of the asymmetric Laplace density fitted by maximum likelihood (κ > 0; "
             "1 = symmetric, below 1 = a heavier positive tail, above 1 = a heavier negative "
             "tail).",
    "MLE location": "Where the fitted density peaks (its mode), in weight units.",
    "MLE scale": "Spread of the fitted density, in weight units (higher = wider).",
    "MLE log-likelihood": "Log-likelihood of the class's weights under the fitted density "
                          "(higher = more probable; compare between fits of the same class).",
    "KS statistic": "Kolmogorov–Smirnov statistic: the largest gap between the weights' "
                    "cumulative distribution and the fitted one (0 to 1; lower = better fit).",
    "regression R²": "R² of the straight-line regression from the weight-distribution "
                     "write-up (log of sorted weights against their rank), per side (0 to 1; "
                     "higher = the line fits better).",
    "regression slope a": "Slope a of that regression line, per side.",
    "regression intercept b": "Intercept b of that regression line, per side.",
    "regression κ": "κ derived from the regression line as in the write-up, √(e^b / (a − e^b)) "
                    "— a different quantity from the MLE κ above, and undefined when a ≤ e^b.",
    "weights + / − / 0": "How many of the class's weights are positive, negative and exactly 0.",
    "status": "'ok', or why a number of this class is undefined.",
    # -- image pages
    "class": "The true class of the images in this row.",
    "images": "How many of the data set's images have this true class.",
    "representation": "What each image is turned into before comparing (see the columns "
                      "of the table above).",
    "algorithm": "How the images are clustered without their labels (k-means, or a "
                 "Gaussian mixture), into as many clusters as there are classes.",
    "Grad-CAM weights": "Mean cosine between images of the class, each represented by its "
                        "Grad-CAM channel weights (the gradient of the predicted class, "
                        "averaged over space) — the image-similarity write-up's "
                        "representation (−1 to 1; higher = more alike).",
    "softmax": "Mean cosine between images of the class, each represented by the model's "
               "class probabilities (0 to 1 here; higher = more alike predictions).",
    "features": "Mean cosine between images of the class, each represented by its last "
                "feature map averaged over space (−1 to 1; higher = more alike).",
    "Grad-CAM map CC": "Mean correlation between the Grad-CAM maps of images of the class "
                       "(−1 to 1; higher = the evidence lies in the same places).",
    "ARI": "Adjusted Rand index of the clusters against the true classes (about 0 = chance, "
           "1 = the clusters are the classes).",
    "NMI": "Normalised mutual information of the clusters and the true classes (0 = "
           "unrelated, 1 = the clusters are the classes).",
    "Silhouette": "How well separated the clusters found are (−1 to 1; higher = tighter, "
                  "better separated clusters), with the distance and scaling named.",
    # -- compare page
    "Spearman ρ": "Rank correlation of the two models' class-pair scores (−1 to 1; higher = "
                  "they rank class pairs alike).",
    "Mantel r": "Correlation of the two distance matrices with its permutation p-value (r −1 "
                "to 1, higher = more alike; small p = unlikely by chance).",
    "cophenetic correlation": "Correlation of the two trees' merge heights over class pairs "
                              "(−1 to 1; higher = more alike trees).",
    "mean B_k": "Mean Fowlkes–Mallows index of the two trees' cuts into k clusters (0 to 1; "
                "higher = the cuts agree more).",
    "tanglegram crossings": "Lines that cross when the two trees face each other, after "
                            "untangling (fewer = more alike leaf orders).",
}


def explain(label: str) -> str | None:
    """The explanation of a number's ``label`` (exact, else the longest key it starts
    with), or None."""
    text = EXPLANATIONS.get(label)
    if text is not None:
        return text
    matches = [key for key in EXPLANATIONS if label.startswith(key)]
    return EXPLANATIONS[max(matches, key=len)] if matches else None
