# Reference numbers for ips_impact.estimators.spillover / heterogeneity (issue 7).
#
# Run from this folder:  Rscript spillover_heterogeneity.R
# Writes ../data/het_achievement_awards_2001.csv, ../data/het_alo_star_men.csv and
# ../spillover_heterogeneity_reference.json (every number with the R call that produced it).
#
# Datasets that ship in R packages:
# * clubSandwich::AchievementAwardsRCT (Angrist & Lavy 2009): 39 Israeli schools randomized
#   (in 19 matched pairs, one pair of three) to cash awards for the matriculation exam.
#   Assignment is at the school level, so a school plays the part of a household: one
#   student per school (the first row in file order) is the "index person" whose assignment
#   is the school's, the other students are the "members"; clusters = schools, strata = pairs.
#   Cohort 2001 only (3,821 students).
# * estimatr::alo_star_men (Angrist, Lang & Oreopoulos 2009, as in Lin 2013): 157 men,
#   individually randomized; arm = sfsp, outcome GPA_year1; moderator gpa0.
#
# Packages: estimatr, clubSandwich, car, jsonlite.

suppressPackageStartupMessages({
  library(estimatr)
  library(clubSandwich)
  library(car)
  library(jsonlite)
})

out <- list(
  meta = list(
    script = "tests/reference/r/spillover_heterogeneity.R",
    R = R.version.string,
    estimatr = as.character(packageVersion("estimatr")),
    clubSandwich = as.character(packageVersion("clubSandwich")),
    car = as.character(packageVersion("car")),
    note = paste(
      "Every entry holds the R call that produced it. Joint tests: W = (Rb)'(R V R')^-1 (Rb)",
      "with V the fitted model's vcov; F = W / q; for HC types p from F(q, n - rank),",
      "for CR types p from F(q, G - 1) (clubSandwich 'Naive-F'). joint_clubSandwich: the same",
      "hypothesis through clubSandwich::Wald_test with vcov = 'CR2' (chi-sq, Naive-F and HTZ,",
      "Pustejovsky & Tipton 2018: F = delta W / q on F(q, nu - q + 1), delta = (nu - q + 1) / nu)."
    )
  ),
  models = list()
)

# ---- helpers -----------------------------------------------------------------------------

coef_block <- function(fit, terms) {
  # Numbers of the named coefficients of an estimatr fit, at full precision.
  s <- summary(fit)$coefficients
  lapply(setNames(terms, terms), function(t) {
    list(
      estimate = unname(coef(fit)[t]),
      std_error = unname(fit$std.error[t]),
      statistic = unname(fit$statistic[t]),
      p_value = unname(fit$p.value[t]),
      df = unname(fit$df[t]),
      conf_low = unname(fit$conf.low[t]),
      conf_high = unname(fit$conf.high[t])
    )
  })
}

wald_equal <- function(fit, terms, denom_df) {
  # Joint Wald test that the coefficients `terms` are all equal, with the fit's own vcov.
  b <- coef(fit)[terms]
  V <- vcov(fit)[terms, terms]
  q <- length(terms) - 1
  R <- cbind(-1, diag(q))
  rb <- R %*% b
  W <- drop(t(rb) %*% solve(R %*% V %*% t(R), rb))
  list(
    chi2 = W, q = q, F = W / q, df_num = q, df_denom = denom_df,
    p_value = pf(W / q, q, denom_df, lower.tail = FALSE),
    p_value_chi2 = pchisq(W, q, lower.tail = FALSE)
  )
}

mde <- function(se, df, alpha = 0.05, power = 0.8) {
  # Bloom (1995): MDE = (t_{1-alpha/2, df} + t_{power, df}) * SE.
  (qt(1 - alpha / 2, df) + qt(power, df)) * se
}

add <- function(id, call, fit, terms, extra = list()) {
  entry <- c(
    list(call = call, nobs = fit$nobs, rank = fit$rank,
         n_clusters = if (is.null(fit$nclusters)) NULL else fit$nclusters,
         coefficients = coef_block(fit, terms)),
    extra
  )
  out$models[[id]] <<- entry
}

# ---- data: AchievementAwardsRCT, cohort 2001 ----------------------------------------------

aa <- subset(as.data.frame(AchievementAwardsRCT), year == "2001")
aa <- aa[, c("school_id", "pair", "treated", "school_type", "student_id", "sex", "siblings",
             "immigrant", "father_ed", "mother_ed", "lagscore", "Bagrut_status", "attempted")]
aa$row <- seq_len(nrow(aa)) - 1L                 # 0-based position in the exported file
aa$is_index <- as.integer(!duplicated(aa$school_id))  # first student of each school
aa$sex <- factor(aa$sex)
aa$school_type <- factor(aa$school_type, levels = c("Arab", "Religious", "Secular"))
write.csv(aa, "../data/het_achievement_awards_2001.csv", row.names = FALSE)

mem <- subset(aa, is_index == 0)                 # the "members": every other student

# ---- spillover: member level, clustered by household (school) ------------------------------

f <- lm_robust(Bagrut_status ~ treated, data = mem, clusters = school_id, se_type = "CR2")
add("spill_member_none_CR2",
    "lm_robust(Bagrut_status ~ treated, data = mem, clusters = school_id, se_type = 'CR2')",
    f, "treated")

f <- lm_robust(Bagrut_status ~ treated + factor(pair), data = mem, clusters = school_id,
               se_type = "CR2")
add("spill_member_strata_CR2",
    "lm_robust(Bagrut_status ~ treated + factor(pair), data = mem, clusters = school_id, se_type = 'CR2')",
    f, "treated")

f <- lm_robust(Bagrut_status ~ treated + factor(pair), data = mem, clusters = school_id,
               se_type = "stata")
add("spill_member_strata_CR1",
    "lm_robust(Bagrut_status ~ treated + factor(pair), data = mem, clusters = school_id, se_type = 'stata')",
    f, "treated")

f <- lm_robust(Bagrut_status ~ treated + factor(pair) + siblings + immigrant + father_ed +
                 mother_ed + lagscore, data = mem, clusters = school_id, se_type = "CR2")
add("spill_member_ancova_CR2",
    paste("lm_robust(Bagrut_status ~ treated + factor(pair) + siblings + immigrant + father_ed",
          "+ mother_ed + lagscore, data = mem, clusters = school_id, se_type = 'CR2')"),
    f, "treated")

# Lin (2013) without the pair dummies: with one treated school per pair, arm x pair
# interactions leave nothing to estimate the variance from (the CR2 df collapse to ~3).
f <- lm_lin(Bagrut_status ~ treated, covariates = ~ siblings + father_ed + mother_ed + lagscore,
            data = mem, clusters = school_id, se_type = "CR2")
add("spill_member_lin_CR2",
    paste("lm_lin(Bagrut_status ~ treated, covariates = ~ siblings + father_ed + mother_ed +",
          "lagscore, data = mem, clusters = school_id, se_type = 'CR2')"),
    f, "treated")

# Same clustered fit through clubSandwich (a second implementation of CR2 and its df).
lmf <- lm(Bagrut_status ~ treated + factor(pair), data = mem)
cs <- coef_test(lmf, vcov = "CR2", cluster = mem$school_id, test = "Satterthwaite")
out$models[["spill_member_strata_CR2_clubSandwich"]] <- list(
  call = paste("coef_test(lm(Bagrut_status ~ treated + factor(pair), data = mem), vcov = 'CR2',",
               "cluster = mem$school_id, test = 'Satterthwaite')['treated', ]"),
  coefficients = list(treated = list(
    estimate = cs$beta[2], std_error = cs$SE[2], df = cs$df_Satt[2], p_value = cs$p_Satt[2]))
)

# ---- spillover: household level (one row per household) ------------------------------------

hh_mean <- aggregate(Bagrut_status ~ school_id + pair + treated, data = mem, FUN = mean)
f <- lm_robust(Bagrut_status ~ treated + factor(pair), data = hh_mean, se_type = "HC2")
add("spill_household_mean_strata_HC2",
    paste("hh_mean <- aggregate(Bagrut_status ~ school_id + pair + treated, data = mem, FUN = mean);",
          "lm_robust(Bagrut_status ~ treated + factor(pair), data = hh_mean, se_type = 'HC2')"),
    f, "treated")

f <- lm_robust(Bagrut_status ~ treated, data = hh_mean, se_type = "HC2")
add("spill_household_mean_none_HC2",
    "lm_robust(Bagrut_status ~ treated, data = hh_mean, se_type = 'HC2')", f, "treated")

# Household total including the index person: sum over every student of the school.
hh_tot <- aggregate(cbind(Bagrut_status, attempted) ~ school_id + pair + treated, data = aa,
                    FUN = sum)
f <- lm_robust(Bagrut_status ~ treated + factor(pair), data = hh_tot, se_type = "HC2")
add("household_total_strata_HC2",
    paste("hh_tot <- aggregate(cbind(Bagrut_status, attempted) ~ school_id + pair + treated,",
          "data = aa, FUN = sum); lm_robust(Bagrut_status ~ treated + factor(pair), data = hh_tot,",
          "se_type = 'HC2')"),
    f, "treated")

# ---- heterogeneity, clustered (AchievementAwards, every student is a "person") --------------

f <- lm_robust(Bagrut_status ~ 0 + sex + sex:treated + factor(pair), data = aa,
               clusters = school_id, se_type = "CR2")
terms <- c("sexBoy:treated", "sexGirl:treated")
add("het_sex_strata_CR2",
    paste("lm_robust(Bagrut_status ~ 0 + sex + sex:treated + factor(pair), data = aa,",
          "clusters = school_id, se_type = 'CR2')"),
    f, terms,
    list(joint = wald_equal(f, terms, 39 - 1),
         mde = as.list(setNames(mde(f$std.error[terms], f$df[terms]), terms))))
# The same test through clubSandwich (Naive-F uses F(q, G - 1)).
lmf <- lm(Bagrut_status ~ 0 + sex + sex:treated + factor(pair), data = aa)
wt <- Wald_test(lmf, constraints = constrain_equal(c("sexBoy:treated", "sexGirl:treated")),
                vcov = "CR2", cluster = aa$school_id, test = c("chi-sq", "Naive-F", "HTZ"))
out$models[["het_sex_strata_CR2"]]$joint_clubSandwich <- list(
  call = paste("Wald_test(lm(Bagrut_status ~ 0 + sex + sex:treated + factor(pair), data = aa),",
               "constraints = constrain_equal(c('sexBoy:treated', 'sexGirl:treated')), vcov = 'CR2',",
               "cluster = aa$school_id, test = c('chi-sq', 'Naive-F', 'HTZ'))"),
  test = as.character(wt$test), Fstat = wt$Fstat, delta = wt$delta, df_num = wt$df_num,
  df_denom = wt$df_denom, p_val = wt$p_val)

f <- lm_robust(Bagrut_status ~ 0 + school_type + school_type:treated + factor(pair) +
                 siblings + immigrant + father_ed + mother_ed, data = aa,
               clusters = school_id, se_type = "CR2")
terms <- c("school_typeArab:treated", "school_typeReligious:treated", "school_typeSecular:treated")
add("het_schooltype_ancova_CR2",
    paste("lm_robust(Bagrut_status ~ 0 + school_type + school_type:treated + factor(pair) +",
          "siblings + immigrant + father_ed + mother_ed, data = aa, clusters = school_id,",
          "se_type = 'CR2')"),
    f, terms,
    list(joint = wald_equal(f, terms, 39 - 1),
         mde = as.list(setNames(mde(f$std.error[terms], f$df[terms]), terms)),
         aliased = names(coef(f))[is.na(coef(f))]))
# HTZ (Pustejovsky & Tipton 2018) and Naive-F for the three school types, through clubSandwich.
lmf <- lm(Bagrut_status ~ 0 + school_type + school_type:treated + factor(pair) + siblings +
            immigrant + father_ed + mother_ed, data = aa)
wt <- Wald_test(lmf, constraints = constrain_equal(terms), vcov = "CR2", cluster = aa$school_id,
                test = c("chi-sq", "Naive-F", "HTZ"))
out$models[["het_schooltype_ancova_CR2"]]$joint_clubSandwich <- list(
  call = paste("Wald_test(lm(Bagrut_status ~ 0 + school_type + school_type:treated + factor(pair) +",
               "siblings + immigrant + father_ed + mother_ed, data = aa), constraints =",
               "constrain_equal(c('school_typeArab:treated', 'school_typeReligious:treated',",
               "'school_typeSecular:treated')), vcov = 'CR2', cluster = aa$school_id,",
               "test = c('chi-sq', 'Naive-F', 'HTZ'))"),
  test = as.character(wt$test), Fstat = wt$Fstat, delta = wt$delta, df_num = wt$df_num,
  df_denom = wt$df_denom, p_val = wt$p_val)

aa$lagscore_c <- aa$lagscore - mean(aa$lagscore)
f <- lm_robust(Bagrut_status ~ treated * lagscore_c + factor(pair), data = aa,
               clusters = school_id, se_type = "CR2")
add("het_lagscore_strata_CR2",
    paste("aa$lagscore_c <- aa$lagscore - mean(aa$lagscore);",
          "lm_robust(Bagrut_status ~ treated * lagscore_c + factor(pair), data = aa,",
          "clusters = school_id, se_type = 'CR2')"),
    f, c("treated", "treated:lagscore_c"))
# HTZ for the interaction (q = 1: the Satterthwaite t test, squared).
lmf <- lm(Bagrut_status ~ treated * lagscore_c + factor(pair), data = aa)
wt <- Wald_test(lmf, constraints = constrain_zero("treated:lagscore_c"), vcov = "CR2",
                cluster = aa$school_id, test = c("chi-sq", "Naive-F", "HTZ"))
out$models[["het_lagscore_strata_CR2"]]$joint_clubSandwich <- list(
  call = paste("Wald_test(lm(Bagrut_status ~ treated * lagscore_c + factor(pair), data = aa),",
               "constraints = constrain_zero('treated:lagscore_c'), vcov = 'CR2',",
               "cluster = aa$school_id, test = c('chi-sq', 'Naive-F', 'HTZ'))"),
  test = as.character(wt$test), Fstat = wt$Fstat, delta = wt$delta, df_num = wt$df_num,
  df_denom = wt$df_denom, p_val = wt$p_val)

# ---- heterogeneity, individually randomized (alo_star_men), HC0-HC3 -----------------------

data(alo_star_men, package = "estimatr")
alo <- alo_star_men
alo$row <- seq_len(nrow(alo)) - 1L
write.csv(alo, "../data/het_alo_star_men.csv", row.names = FALSE)
alo$tercile <- cut(alo$gpa0, quantile(alo$gpa0, c(0, 1 / 3, 2 / 3, 1)), include.lowest = TRUE,
                   labels = c("T1", "T2", "T3"))
out$models[["alo_tercile_cutpoints"]] <- list(
  call = "quantile(alo$gpa0, c(0, 1/3, 2/3, 1))  # type 7; cut(..., include.lowest = TRUE)",
  cutpoints = unname(quantile(alo$gpa0, c(0, 1 / 3, 2 / 3, 1))),
  counts = as.list(table(alo$tercile)))

terms <- c("tercileT1:sfsp", "tercileT2:sfsp", "tercileT3:sfsp")
for (se in c("HC0", "HC1", "HC2", "HC3")) {
  f <- lm_robust(GPA_year1 ~ 0 + tercile + tercile:sfsp, data = alo, se_type = se)
  lh <- linearHypothesis(f, c("tercileT1:sfsp = tercileT2:sfsp", "tercileT1:sfsp = tercileT3:sfsp"),
                         test = "F")
  add(paste0("het_tercile_none_", se),
      sprintf("lm_robust(GPA_year1 ~ 0 + tercile + tercile:sfsp, data = alo, se_type = '%s')", se),
      f, terms,
      list(joint = wald_equal(f, terms, f$nobs - f$rank),
           joint_car = list(
             call = paste("car::linearHypothesis(fit, c('tercileT1:sfsp = tercileT2:sfsp',",
                          "'tercileT1:sfsp = tercileT3:sfsp'), test = 'F')"),
             F = lh$F[2], df_denom = lh$Res.Df[2], p_value = lh$`Pr(>F)`[2]),
           mde = as.list(setNames(mde(f$std.error[terms], f$df[terms]), terms))))
}

alo$gpa0_c <- alo$gpa0 - mean(alo$gpa0)
f <- lm_robust(GPA_year1 ~ sfsp * gpa0_c, data = alo, se_type = "HC2")
add("het_gpa0_none_HC2",
    paste("alo$gpa0_c <- alo$gpa0 - mean(alo$gpa0);",
          "lm_robust(GPA_year1 ~ sfsp * gpa0_c, data = alo, se_type = 'HC2')"),
    f, c("sfsp", "sfsp:gpa0_c"))

f <- lm_robust(GPA_year1 ~ 0 + tercile + tercile:sfsp + gpa0, data = alo, se_type = "HC2")
add("het_tercile_ancova_HC2",
    "lm_robust(GPA_year1 ~ 0 + tercile + tercile:sfsp + gpa0, data = alo, se_type = 'HC2')",
    f, terms,
    list(joint = wald_equal(f, terms, f$nobs - f$rank),
         mde = as.list(setNames(mde(f$std.error[terms], f$df[terms]), terms))))

write_json(out, "../spillover_heterogeneity_reference.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
cat("wrote ../spillover_heterogeneity_reference.json with", length(out$models), "entries\n")
