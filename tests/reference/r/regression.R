# Reference numbers for ips_impact.inference.covariance and ips_impact.estimators.itt.
#
# Run from anywhere:  Rscript tests/reference/r/regression.R
# Writes tests/reference/data/reg_*.csv (the exact data the Python tests read) and
# tests/reference/regression_reference.json (every number with the R call beside it).
#
# Datasets (all ship with R packages):
#   reg_star.csv      AER::STAR, kindergarten, small class vs regular class (Tennessee
#                     STAR experiment), schools with >= 2 pupils in each arm; strata:
#                     school type (4) or school (78); clusters: school.
#   reg_npk.csv       datasets::npk, a randomized block design (6 blocks of 4 plots);
#                     treatment N (nitrogen), covariates P and K.
#   reg_petersen.csv  sandwich::PetersenCL, 500 firms x 10 years; treatment d = (x > 0),
#                     year fixed effects, clusters: firm.
suppressPackageStartupMessages({
  library(estimatr)
  library(sandwich)
  library(AER)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
ref_dir <- normalizePath(file.path(here, ".."))
data_dir <- file.path(ref_dir, "data")
dir.create(data_dir, showWarnings = FALSE)

# ---------------------------------------------------------------- data
data("STAR", package = "AER")
s <- STAR[!is.na(STAR$stark) & STAR$stark != "regular+aide", ]
v <- c("readk", "mathk", "gender", "ethnicity", "lunchk", "experiencek", "schoolidk", "schoolk")
s <- s[complete.cases(s[, v]), ]
star <- data.frame(
  readk = s$readk,
  mathk = s$mathk,
  small = as.integer(s$stark == "small"),
  female = as.integer(s$gender == "female"),
  afam = as.integer(s$ethnicity == "afam"),
  freelunch = as.integer(s$lunchk == "free"),
  experience = s$experiencek,
  school = paste0("s", as.character(s$schoolidk)),
  schooltype = as.character(s$schoolk),
  stringsAsFactors = FALSE
)
tb <- table(star$school, star$small)
keep <- rownames(tb)[tb[, "0"] >= 2 & tb[, "1"] >= 2]
star <- star[star$school %in% keep, ]
rownames(star) <- NULL
write.csv(star, file.path(data_dir, "reg_star.csv"), row.names = FALSE)

npk_d <- data.frame(
  yield = npk$yield,
  N = as.integer(as.character(npk$N)),
  P = as.integer(as.character(npk$P)),
  K = as.integer(as.character(npk$K)),
  block = paste0("b", as.character(npk$block)),
  stringsAsFactors = FALSE
)
write.csv(npk_d, file.path(data_dir, "reg_npk.csv"), row.names = FALSE)

data("PetersenCL", package = "sandwich")
pet <- data.frame(
  firm = PetersenCL$firm,
  year = paste0("y", PetersenCL$year),
  x = PetersenCL$x,
  d = as.integer(PetersenCL$x > 0),
  y = PetersenCL$y,
  stringsAsFactors = FALSE
)
write.csv(pet, file.path(data_dir, "reg_petersen.csv"), row.names = FALSE)

# Re-read the CSVs so that R works on exactly the numbers Python reads.
star <- read.csv(file.path(data_dir, "reg_star.csv"), stringsAsFactors = FALSE)
npk_d <- read.csv(file.path(data_dir, "reg_npk.csv"), stringsAsFactors = FALSE)
pet <- read.csv(file.path(data_dir, "reg_petersen.csv"), stringsAsFactors = FALSE)

# ---------------------------------------------------------------- helpers
cases <- list()

tidy_row <- function(est, se, df, level = 0.95) {
  q <- qt(0.5 + level / 2, df)
  list(estimate = est, std_error = se, statistic = est / se, df = df,
       p_value = 2 * pt(abs(est / se), df, lower.tail = FALSE),
       conf_low = est - q * se, conf_high = est + q * se)
}

from_estimatr <- function(fit) {
  # all coefficients of an estimatr fit (via its tidy() method), named as R names them
  td <- tidy(fit)
  out <- list()
  for (i in seq_len(nrow(td))) {
    out[[td$term[i]]] <- list(estimate = td$estimate[i], std_error = td$std.error[i],
                              statistic = td$statistic[i], df = td$df[i],
                              p_value = td$p.value[i], conf_low = td$conf.low[i],
                              conf_high = td$conf.high[i])
  }
  out
}

add_case <- function(id, spec, call_text, terms, treatment) {
  cases[[length(cases) + 1]] <<- list(
    id = id, spec = spec, call = call_text, treatment = treatment, terms = terms
  )
}

run_estimatr <- function(id, spec, call_text, treatment) {
  fit <- eval(parse(text = call_text))
  add_case(id, spec, call_text, from_estimatr(fit), treatment)
}

run_vcovcl <- function(id, spec, call_text, lm_text, treatment, df_kind) {
  fit <- eval(parse(text = lm_text))
  V <- eval(parse(text = call_text))
  G <- length(unique(eval(parse(text = spec$cluster_expr))))
  terms <- list()
  for (nm in names(coef(fit))) {
    df <- if (df_kind == "G-1") G - 1 else NA
    terms[[nm]] <- tidy_row(unname(coef(fit)[nm]), sqrt(V[nm, nm]), df)
  }
  add_case(id, spec, paste0(call_text, "  # fit <- ", lm_text), terms, treatment)
}

spec_of <- function(dataset, outcome, treatment, adjustment, strata = NULL,
                    covariates = character(0), cov_type = "HC2", cluster = NULL,
                    source = "estimatr") {
  list(dataset = dataset, outcome = outcome, treatment = treatment,
       adjustment = adjustment, strata = strata, covariates = I(covariates),
       cov_type = cov_type, cluster = cluster, source = source)
}

estimatr_se <- c(HC0 = "HC0", HC1 = "stata", HC2 = "HC2", HC3 = "HC3")
cr_se <- c(CR0 = "CR0", CR1 = "stata", CR2 = "CR2")
star_cov <- c("female", "afam", "freelunch", "experience")
star_cov_f <- "female + afam + freelunch + experience"

# ---------------------------------------------------------------- STAR
# difference_in_means (its own SE formula: Neyman / blocked Neyman, Welch df unblocked)
run_estimatr("star_dim", spec_of("reg_star.csv", "readk", "small", "none"),
             "difference_in_means(readk ~ small, data = star)", "small")
run_estimatr("star_dim_blocks_type", spec_of("reg_star.csv", "readk", "small", "none", "schooltype"),
             "difference_in_means(readk ~ small, blocks = schooltype, data = star)", "small")
run_estimatr("star_dim_blocks_school", spec_of("reg_star.csv", "readk", "small", "none", "school"),
             "difference_in_means(readk ~ small, blocks = school, data = star)", "small")

for (ct in names(estimatr_se)) {
  se <- estimatr_se[[ct]]
  run_estimatr(paste0("star_none_", ct), spec_of("reg_star.csv", "readk", "small", "none", NULL, character(0), ct),
               sprintf("lm_robust(readk ~ small, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_none_type_", ct), spec_of("reg_star.csv", "readk", "small", "none", "schooltype", character(0), ct),
               sprintf("lm_lin(readk ~ small, covariates = ~ schooltype, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_none_school_", ct), spec_of("reg_star.csv", "readk", "small", "none", "school", character(0), ct),
               sprintf("lm_lin(readk ~ small, covariates = ~ school, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_ancova_nostrata_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", NULL, star_cov, ct),
               sprintf("lm_robust(readk ~ small + %s, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_ancova_type_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, ct),
               sprintf("lm_robust(readk ~ small + %s + schooltype, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_ancova_school_fe_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", "school", star_cov, ct),
               sprintf("lm_robust(readk ~ small + %s, fixed_effects = ~ school, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_ancova_nocov_type_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", character(0), ct),
               sprintf("lm_robust(readk ~ small + schooltype, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_lin_nostrata_", ct), spec_of("reg_star.csv", "readk", "small", "lin", NULL, star_cov, ct),
               sprintf("lm_lin(readk ~ small, covariates = ~ %s, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_lin_type_", ct), spec_of("reg_star.csv", "readk", "small", "lin", "schooltype", star_cov, ct),
               sprintf("lm_lin(readk ~ small, covariates = ~ %s + schooltype, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_lin_school_", ct), spec_of("reg_star.csv", "readk", "small", "lin", "school", star_cov, ct),
               sprintf("lm_lin(readk ~ small, covariates = ~ %s + school, data = star, se_type = '%s')", star_cov_f, se), "small")
}

for (ct in names(cr_se)) {
  se <- cr_se[[ct]]
  run_estimatr(paste0("star_cl_none_", ct), spec_of("reg_star.csv", "readk", "small", "none", NULL, character(0), ct, "school"),
               sprintf("lm_robust(readk ~ small, clusters = school, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_cl_none_type_", ct), spec_of("reg_star.csv", "readk", "small", "none", "schooltype", character(0), ct, "school"),
               sprintf("lm_lin(readk ~ small, covariates = ~ schooltype, clusters = school, data = star, se_type = '%s')", se), "small")
  run_estimatr(paste0("star_cl_ancova_type_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, ct, "school"),
               sprintf("lm_robust(readk ~ small + %s + schooltype, clusters = school, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_cl_ancova_type_fe_", ct), spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, ct, "school"),
               sprintf("lm_robust(readk ~ small + %s, fixed_effects = ~ schooltype, clusters = school, data = star, se_type = '%s')", star_cov_f, se), "small")
  run_estimatr(paste0("star_cl_lin_type_", ct), spec_of("reg_star.csv", "readk", "small", "lin", "schooltype", star_cov, ct, "school"),
               sprintf("lm_lin(readk ~ small, covariates = ~ %s + schooltype, clusters = school, data = star, se_type = '%s')", star_cov_f, se), "small")
}

# sandwich::vcovCL on the same ANCOVA: HC1 = CR1 (Stata), HC0 without cadjust = CR0,
# HC2 (with the default cadjust = TRUE, which for HC2 cancels sandwich's (G-1)/G) = CR2.
star_lm <- sprintf("lm(readk ~ small + %s + schooltype, data = star)", star_cov_f)
run_vcovcl("star_vcovcl_CR1", c(spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, "CR1", "school", "sandwich"), list(cluster_expr = "star$school")),
           "vcovCL(fit, cluster = ~ school, type = 'HC1')", star_lm, "small", "G-1")
run_vcovcl("star_vcovcl_CR0", c(spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, "CR0", "school", "sandwich"), list(cluster_expr = "star$school")),
           "vcovCL(fit, cluster = ~ school, type = 'HC0', cadjust = FALSE)", star_lm, "small", "G-1")
run_vcovcl("star_vcovcl_CR2", c(spec_of("reg_star.csv", "readk", "small", "ancova", "schooltype", star_cov, "CR2", "school", "sandwich"), list(cluster_expr = "star$school")),
           "vcovCL(fit, cluster = ~ school, type = 'HC2')", star_lm, "small", "none")

# ---------------------------------------------------------------- npk (tiny blocked experiment)
run_estimatr("npk_dim_blocks", spec_of("reg_npk.csv", "yield", "N", "none", "block"),
             "difference_in_means(yield ~ N, blocks = block, data = npk_d)", "N")
run_estimatr("npk_dim", spec_of("reg_npk.csv", "yield", "N", "none"),
             "difference_in_means(yield ~ N, data = npk_d)", "N")
for (ct in names(estimatr_se)) {
  se <- estimatr_se[[ct]]
  run_estimatr(paste0("npk_none_block_", ct), spec_of("reg_npk.csv", "yield", "N", "none", "block", character(0), ct),
               sprintf("lm_lin(yield ~ N, covariates = ~ block, data = npk_d, se_type = '%s')", se), "N")
  run_estimatr(paste0("npk_ancova_block_", ct), spec_of("reg_npk.csv", "yield", "N", "ancova", "block", c("P", "K"), ct),
               sprintf("lm_robust(yield ~ N + P + K + block, data = npk_d, se_type = '%s')", se), "N")
  run_estimatr(paste0("npk_ancova_block_fe_", ct), spec_of("reg_npk.csv", "yield", "N", "ancova", "block", c("P", "K"), ct),
               sprintf("lm_robust(yield ~ N + P + K, fixed_effects = ~ block, data = npk_d, se_type = '%s')", se), "N")
  run_estimatr(paste0("npk_lin_", ct), spec_of("reg_npk.csv", "yield", "N", "lin", NULL, c("P", "K"), ct),
               sprintf("lm_lin(yield ~ N, covariates = ~ P + K, data = npk_d, se_type = '%s')", se), "N")
}

# ---------------------------------------------------------------- PetersenCL (clusters of 10 rows)
for (ct in names(cr_se)) {
  se <- cr_se[[ct]]
  run_estimatr(paste0("pet_x_", ct), spec_of("reg_petersen.csv", "y", "x", "engine", NULL, character(0), ct, "firm"),
               sprintf("lm_robust(y ~ x, clusters = firm, data = pet, se_type = '%s')", se), "x")
  run_estimatr(paste0("pet_ancova_year_", ct), spec_of("reg_petersen.csv", "y", "d", "ancova", "year", character(0), ct, "firm"),
               sprintf("lm_robust(y ~ d + year, clusters = firm, data = pet, se_type = '%s')", se), "d")
  run_estimatr(paste0("pet_lin_year_", ct), spec_of("reg_petersen.csv", "y", "d", "lin", "year", c("x"), ct, "firm"),
               sprintf("lm_lin(y ~ d, covariates = ~ x + year, clusters = firm, data = pet, se_type = '%s')", se), "d")
}
for (ct in names(estimatr_se)) {
  se <- estimatr_se[[ct]]
  run_estimatr(paste0("pet_x_", ct), spec_of("reg_petersen.csv", "y", "x", "engine", NULL, character(0), ct),
               sprintf("lm_robust(y ~ x, data = pet, se_type = '%s')", se), "x")
}
pet_lm <- "lm(y ~ x, data = pet)"
run_vcovcl("pet_vcovcl_CR1", c(spec_of("reg_petersen.csv", "y", "x", "engine", NULL, character(0), "CR1", "firm", "sandwich"), list(cluster_expr = "pet$firm")),
           "vcovCL(fit, cluster = ~ firm, type = 'HC1')", pet_lm, "x", "G-1")
run_vcovcl("pet_vcovcl_CR2", c(spec_of("reg_petersen.csv", "y", "x", "engine", NULL, character(0), "CR2", "firm", "sandwich"), list(cluster_expr = "pet$firm")),
           "vcovCL(fit, cluster = ~ firm, type = 'HC2')", pet_lm, "x", "none")

out <- list(
  generated_by = "Rscript tests/reference/r/regression.R",
  r_version = R.version.string,
  packages = list(estimatr = as.character(packageVersion("estimatr")),
                  sandwich = as.character(packageVersion("sandwich")),
                  AER = as.character(packageVersion("AER"))),
  note = paste("estimatr se_type 'stata' is HC1 without clusters and CR1 with clusters;",
               "spec.cov_type gives the ips_impact name. Numbers printed with jsonlite digits = NA (15 significant digits)."),
  cases = cases
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"),
           file.path(ref_dir, "regression_reference.json"))
cat("wrote", length(cases), "cases to", file.path(ref_dir, "regression_reference.json"), "\n")
