# Reference values for ips_impact.inference.multiple (bonferroni, holm, bh, by).
# Run from this folder:  Rscript padjust.R   -> ../padjust_reference.json
# Uses only base R stats::p.adjust and jsonlite. Inputs are fixed vectors (ties, ones,
# tiny values, one single p-value) and a seeded draw of 40 p-values written out in full.
library(jsonlite)

cases <- list(
  simple = c(0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216),
  ties = c(0.02, 0.02, 0.02, 0.5, 0.5, 0.001, 1, 0.9),
  single = c(0.03),
  unsorted = c(0.3, 0.0001, 0.047, 0.012, 0.9, 0.049, 0.6, 0.0049, 0.0051, 0.2),
  near_one = c(0.95, 0.96, 0.99, 1, 0.97)
)
set.seed(20081215)
cases$random40 <- round(c(runif(30), rbeta(10, 0.3, 4)), 10)

methods <- c(bonferroni = "bonferroni", holm = "holm", bh = "BH", by = "BY")
out <- list(
  r_version = R.version.string,
  call = "stats::p.adjust(p, method)",
  cases = lapply(names(cases), function(nm) {
    p <- cases[[nm]]
    list(name = nm, p = p,
         adjusted = lapply(methods, function(m) p.adjust(p, method = m)))
  })
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "../padjust_reference.json")
