# Reference numbers for the design-based defaults of ips_impact.estimators.itt:
#   (1) matched-pair cluster randomization: one cluster per pair x arm
#       (estimatr::difference_in_means(blocks=, clusters=), Imai, King & Nall 2009 variance,
#        df = pairs - 1);
#   (2) unequal assignment probabilities across strata (0.5 and 0.1): the blocked
#       difference in means (estimatr::difference_in_means(blocks=)) and the Lin estimator
#       with stratum dummies (estimatr::lm_lin(covariates = ~ stratum [+ x])), both estimate
#       the ATE; and the strata fixed-effects regression (lm_robust(y ~ z + factor(stratum))),
#       which estimates the precision-weighted average instead.
#
# Run from anywhere:  Rscript tests/reference/r/design_estimands.R
# Writes tests/reference/data/design_pairs.csv, design_unequal.csv and
# tests/reference/design_estimands_reference.json.
suppressPackageStartupMessages({
  library(estimatr)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
ref_dir <- normalizePath(file.path(here, ".."))
data_dir <- file.path(ref_dir, "data")
dir.create(data_dir, showWarnings = FALSE)

# ------------------------------------------------------------ (1) matched pairs
set.seed(20261201)
n_pairs <- 18
rows <- list()
for (b in seq_len(n_pairs)) {
  treated_school <- sample(0:1, 1)
  for (s in 0:1) {
    m <- sample(8:25, 1)
    school <- sprintf("s%02d%d", b, s)
    z <- as.integer(s == treated_school)
    school_effect <- rnorm(1, 0, 0.5)
    pair_effect <- (b - n_pairs / 2) / 10
    x <- rnorm(m)
    y <- 1 + pair_effect + school_effect + 0.3 * z + 0.5 * x + rnorm(m)
    rows[[length(rows) + 1]] <- data.frame(pair = sprintf("p%02d", b), school = school, z = z,
                                           x = round(x, 6), y = round(y, 6))
  }
}
pairs <- do.call(rbind, rows)
pairs$person_id <- sprintf("q%04d", seq_len(nrow(pairs)))
write.csv(pairs, file.path(data_dir, "design_pairs.csv"), row.names = FALSE)

dm_pairs <- difference_in_means(y ~ z, blocks = pair, clusters = school, data = pairs)

# ------------------------------------------------- (2) unequal probabilities
set.seed(7)
n_a <- 200; n_b <- 400
stratum <- c(rep("A", n_a), rep("B", n_b))
z <- c(sample(rep(0:1, c(n_a / 2, n_a / 2))), sample(rep(0:1, c(n_b * 0.9, n_b * 0.1))))
x <- round(rnorm(n_a + n_b), 6)
tau <- ifelse(stratum == "A", 0.1, 0.4)
y <- round(ifelse(stratum == "A", 0, 0.5) + tau * z + 0.5 * x + rnorm(n_a + n_b), 6)
unequal <- data.frame(person_id = sprintf("u%04d", seq_along(y)), stratum = stratum, z = z,
                      x = x, y = y)
write.csv(unequal, file.path(data_dir, "design_unequal.csv"), row.names = FALSE)

dm_blocked <- difference_in_means(y ~ z, blocks = stratum, data = unequal)
lin_strata <- lm_lin(y ~ z, covariates = ~ stratum, data = unequal, se_type = "HC2")
lin_strata_x <- lm_lin(y ~ z, covariates = ~ stratum + x, data = unequal, se_type = "HC2")
fe <- lm_robust(y ~ z + factor(stratum), data = unequal, se_type = "HC2")
fe_x <- lm_robust(y ~ z + x + factor(stratum), data = unequal, se_type = "HC2")

row <- function(fit, term, call) {
  t <- tidy(fit)
  t <- t[t$term == term, ]
  list(call = call, estimate = t$estimate, std_error = t$std.error, df = t$df,
       p_value = t$p.value, conf_low = t$conf.low, conf_high = t$conf.high, nobs = nobs(fit))
}

out <- list(
  pairs = row(dm_pairs, "z", "difference_in_means(y ~ z, blocks = pair, clusters = school)"),
  blocked = row(dm_blocked, "z", "difference_in_means(y ~ z, blocks = stratum)"),
  lin_strata = row(lin_strata, "z", "lm_lin(y ~ z, covariates = ~ stratum, se_type = 'HC2')"),
  lin_strata_x = row(lin_strata_x, "z", "lm_lin(y ~ z, covariates = ~ stratum + x, se_type = 'HC2')"),
  strata_fe = row(fe, "z", "lm_robust(y ~ z + factor(stratum), se_type = 'HC2')"),
  strata_fe_x = row(fe_x, "z", "lm_robust(y ~ z + x + factor(stratum), se_type = 'HC2')"),
  r_version = R.version.string,
  estimatr_version = as.character(packageVersion("estimatr"))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(ref_dir, "design_estimands_reference.json"))
cat("wrote design_estimands_reference.json\n")
