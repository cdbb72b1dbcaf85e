"""Write bench/data/linking_pairs.jsonl: the labelled linking pairs (hand-written for livingmeta; no third-party data).

Each base below is one made-up trial (first author, year, title, registry id, DOI) with hand-written
variants. Positives ("same": one study) are reports of that trial as they reach us: its ClinicalTrials.gov
entry, an erratum, a revised or conference version, a translated title in brackets, case, punctuation,
markup, British/American spelling and subtitle changes, secondary reports tied by the registry id or DOI.
Negatives ("different") are the hard cases: sibling trials numbered 1/2, part I/II, phase 2/3, other doses,
other populations, extension and pilot studies, study A/B and cohorts, the same authors' trial of another drug
the same year, titles that differ only in a year. Every pair has a short reason.

The split is by base (all pairs of one base fall in one half), so no trial's wording is seen in both halves:
`dev` for tuning the rules, `eval` reported once (bench/linking.py says which figures are which).

    python bench/data/make_linking_pairs.py    # rewrites bench/data/linking_pairs.jsonl
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

OUT = Path(__file__).with_name("linking_pairs.jsonl")

# (key, first author, year, title, NCT id, DOI, registry official title)
BASES = [
    ("ivig-sfn", "Geerts M", 2021,
     "Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised placebo-controlled trial",
     "NCT02637700", "10.1212/wnl.0000000000011890",
     "IVIg Treatment in Idiopathic Small Fiber Neuropathy: a Randomized Placebo-Controlled Trial"),
    ("ivig-dpn", "Jann S", 2020,
     "Intravenous immunoglobulin for painful diabetic polyneuropathy: a randomised double-blind trial",
     "NCT02915263", "10.1111/ene.14130",
     "Intravenous Immunoglobulin in Painful Diabetic Polyneuropathy"),
    ("empa-hf", "Larsen T", 2019,
     "Empagliflozin and hospitalisation for heart failure in patients with type 2 diabetes and chronic kidney disease",
     "NCT03100001", "10.1000/empa.2019.1",
     "Empagliflozin in Type 2 Diabetes With Chronic Kidney Disease: Heart Failure Outcomes"),
    ("asthma-mepo", "Okafor C", 2018,
     "Mepolizumab for severe eosinophilic asthma in adults: a randomized, double-blind, placebo-controlled trial",
     "NCT03100002", "10.1000/mepo.2018.7",
     "Mepolizumab in Adults With Severe Eosinophilic Asthma"),
    ("stroke-tpa", "Nguyen H", 2022,
     "Tenecteplase versus alteplase for acute ischaemic stroke within 4.5 hours of onset",
     "NCT03100003", "10.1000/tnk.2022.3",
     "Tenecteplase Versus Alteplase for Acute Ischemic Stroke Within 4.5 Hours"),
    ("paed-otitis", "Moreau J", 2017,
     "Short-course amoxicillin for acute otitis media in paediatric outpatients: a noninferiority trial",
     "NCT03100004", "10.1000/otitis.2017.2",
     "Short-Course Amoxicillin for Acute Otitis Media in Pediatric Outpatients"),
    ("haem-tranex", "Brennan K", 2020,
     "Tranexamic acid to reduce postpartum haemorrhage after caesarean delivery: a multicentre randomised trial",
     "NCT03100005", "10.1000/txa.2020.9",
     "Tranexamic Acid for Prevention of Postpartum Hemorrhage After Cesarean Delivery"),
    ("oeso-ppi", "Whitaker L", 2016,
     "Esomeprazole maintenance therapy for healed erosive oesophagitis: a 12-month randomised comparison",
     "NCT03100006", "10.1000/ppi.2016.4",
     "Esomeprazole Maintenance in Healed Erosive Esophagitis"),
    ("tumour-immuno", "Sato Y", 2021,
     "Nivolumab plus ipilimumab in advanced renal cell carcinoma with sarcomatoid tumour features",
     "NCT03100007", "10.1000/nivo.2021.5",
     "Nivolumab Plus Ipilimumab in Advanced Renal Cell Carcinoma With Sarcomatoid Features"),
    ("anaes-ketamine", "Fischer R", 2019,
     "Intraoperative ketamine and postoperative delirium in older adults undergoing major surgery under general anaesthesia",
     "NCT03100008", "10.1000/ket.2019.8",
     "Intraoperative Ketamine for Prevention of Postoperative Delirium in Older Adults"),
    ("beta-hf", "Kowalski P", 2015,
     "Beta-blocker withdrawal after myocardial infarction with preserved ejection fraction: an open-label randomised trial",
     "NCT03100009", "10.1000/bb.2015.1",
     "Beta-Blocker Withdrawal After Myocardial Infarction"),
    ("vitd-falls", "Andersson E", 2018,
     "Monthly high-dose vitamin D supplementation and falls in community-dwelling older women: a randomised trial",
     "NCT03100010", "10.1000/vitd.2018.6",
     "Monthly Vitamin D and Falls in Older Women"),
    ("cbt-insomnia", "Hughes D", 2020,
     "Digital cognitive behavioural therapy for chronic insomnia in primary care: a pragmatic randomised controlled trial",
     "NCT03100011", "10.1000/cbti.2020.3",
     "Digital Cognitive Behavioral Therapy for Insomnia in Primary Care"),
    ("malaria-art", "Diallo A", 2017,
     "Artesunate-amodiaquine versus artemether-lumefantrine for uncomplicated falciparum malaria in children in Mali",
     "NCT03100012", "10.1000/mal.2017.4",
     "Artesunate-Amodiaquine vs Artemether-Lumefantrine for Uncomplicated Malaria in Malian Children"),
    ("copd-triple", "Lindqvist B", 2019,
     "Once-daily single-inhaler triple therapy versus dual bronchodilation in patients with symptomatic COPD",
     "NCT03100013", "10.1000/copd.2019.2",
     "Single-Inhaler Triple Therapy Versus Dual Bronchodilation in Symptomatic COPD"),
    ("ra-jak", "Takahashi M", 2021,
     "Upadacitinib in rheumatoid arthritis with inadequate response to biologic disease-modifying drugs",
     "NCT03100014", "10.1000/upa.2021.7",
     "Upadacitinib in Rheumatoid Arthritis After Inadequate Response to Biologic DMARDs"),
    ("sepsis-steroid", "Martin G", 2018,
     "Hydrocortisone plus fludrocortisone for adults with septic shock: a multicentre double-blind trial",
     "NCT03100015", "10.1000/sep.2018.1",
     "Hydrocortisone Plus Fludrocortisone in Adults With Septic Shock"),
    ("migraine-cgrp", "Rossi F", 2020,
     "Erenumab for the preventive treatment of episodic migraine after failure of two to four preventives",
     "NCT03100016", "10.1000/mig.2020.2",
     "Erenumab in Episodic Migraine After Failure of 2-4 Prior Preventive Treatments"),
    ("depress-ket", "Schmidt A", 2022,
     "Esketamine nasal spray added to an oral antidepressant in treatment-resistant depression",
     "NCT03100017", "10.1000/esk.2022.4",
     "Esketamine Nasal Spray Plus Oral Antidepressant in Treatment-Resistant Depression"),
    ("ckd-finer", "Petrov I", 2021,
     "Finerenone and kidney outcomes in patients with chronic kidney disease and type 2 diabetes",
     "NCT03100018", "10.1000/fin.2021.6",
     "Finerenone on Kidney Outcomes in CKD and Type 2 Diabetes"),
    ("obes-sema", "Clarke J", 2022,
     "Once-weekly semaglutide in adolescents with obesity: a 68-week randomised trial",
     "NCT03100019", "10.1000/sema.2022.8",
     "Semaglutide in Adolescents With Obesity"),
    ("af-ablation", "Dubois C", 2019,
     "Catheter ablation versus antiarrhythmic drug therapy as first-line treatment of paroxysmal atrial fibrillation",
     "NCT03100020", "10.1000/af.2019.5",
     "Cryoballoon Ablation as First-Line Therapy for Paroxysmal Atrial Fibrillation"),
    ("hiv-dolu", "Mwangi P", 2020,
     "Dolutegravir-based versus efavirenz-based antiretroviral therapy in pregnant women with HIV in Kenya",
     "NCT03100021", "10.1000/dtg.2020.3",
     "Dolutegravir vs Efavirenz in Pregnant Women Living With HIV"),
    ("tb-short", "Pillay N", 2021,
     "Four-month rifapentine-moxifloxacin regimen for drug-susceptible pulmonary tuberculosis",
     "NCT03100022", "10.1000/tb.2021.9",
     "Rifapentine-Containing Four-Month Regimen for Pulmonary Tuberculosis"),
    ("psor-bimek", "Reich K", 2021,
     "Bimekizumab versus secukinumab in plaque psoriasis: a head-to-head randomized trial",
     "NCT03100023", "10.1000/bkz.2021.1",
     "Bimekizumab Compared With Secukinumab in Moderate to Severe Plaque Psoriasis"),
    ("glauc-slt", "Gazzard G", 2019,
     "Selective laser trabeculoplasty versus eye drops for first-line treatment of ocular hypertension and glaucoma",
     "NCT03100024", "10.1000/slt.2019.4",
     "Laser in Glaucoma and Ocular Hypertension"),
    ("knee-physio", "Bennell K", 2018,
     "Physiotherapist-led exercise and weight loss for knee osteoarthritis delivered by telehealth",
     "NCT03100025", "10.1000/knee.2018.2",
     "Telehealth Exercise and Weight Loss for Knee Osteoarthritis"),
    ("neo-caffeine", "Schmidt B", 2017,
     "Caffeine citrate for apnoea of prematurity in late preterm infants: a randomised dose-ranging study",
     "NCT03100026", "10.1000/caf.2017.3",
     "Caffeine Citrate for Apnea of Prematurity in Late Preterm Infants"),
    ("crc-asp", "Chan AT", 2016,
     "Aspirin for the prevention of colorectal adenoma recurrence in patients with Lynch syndrome",
     "NCT03100027", "10.1000/asp.2016.6",
     "Aspirin in Prevention of Colorectal Adenomas in Lynch Syndrome"),
    ("uti-nitro", "Huttner A", 2018,
     "Nitrofurantoin versus fosfomycin for uncomplicated lower urinary tract infection in women",
     "NCT03100028", "10.1000/uti.2018.5",
     "Nitrofurantoin vs Fosfomycin in Women With Lower Urinary Tract Infection"),
    ("pd-exercise", "van der Kolk NM", 2019,
     "Effectiveness of home-based and remotely supervised aerobic exercise in Parkinson's disease",
     "NCT03100029", "10.1000/pd.2019.7",
     "Aerobic Exercise at Home in Parkinson's Disease"),
    ("ms-ocreli", "Hauser SL", 2017,
     "Ocrelizumab versus interferon beta-1a in relapsing multiple sclerosis",
     "NCT03100030", "10.1000/ocr.2017.1",
     "Ocrelizumab Compared to Interferon Beta-1a in Relapsing Multiple Sclerosis"),
    ("ad-lecan", "van Dyck CH", 2023,
     "Lecanemab in early Alzheimer's disease: an 18-month placebo-controlled trial",
     "NCT03100031", "10.1000/lec.2023.2",
     "Lecanemab in Early Alzheimer's Disease"),
    ("gout-febux", "Mackenzie IS", 2020,
     "Long-term cardiovascular safety of febuxostat compared with allopurinol in patients with gout",
     "NCT03100032", "10.1000/feb.2020.8",
     "Febuxostat Versus Allopurinol Cardiovascular Safety in Gout"),
    ("burn-dress", "Wasiak J", 2016,
     "Silver-impregnated dressings versus standard care for partial-thickness burns in children",
     "NCT03100033", "10.1000/burn.2016.3",
     "Silver Dressings for Partial-Thickness Burns in Children"),
    ("preg-aspirin", "Rolnik DL", 2017,
     "Aspirin versus placebo in pregnancies at high risk for preterm preeclampsia",
     "NCT03100034", "10.1000/pre.2017.6",
     "Aspirin for Evidence-Based Preeclampsia Prevention"),
    ("covid-dexa", "Horby P", 2021,
     "Dexamethasone in hospitalised patients with COVID-19 requiring oxygen",
     "NCT03100035", "10.1000/dexa.2021.1",
     "Dexamethasone for Hospitalized Patients With COVID-19"),
    ("lbp-tap", "Ashar YK", 2022,
     "Effect of pain reprocessing therapy vs placebo and usual care for patients with chronic back pain",
     "NCT03100036", "10.1000/prt.2022.4",
     "Pain Reprocessing Therapy for Chronic Back Pain"),
    ("sickle-vox", "Vichinsky E", 2019,
     "A phase 3 randomized trial of voxelotor in sickle cell disease",
     "NCT03100037", "10.1000/vox.2019.9",
     "Voxelotor in Sickle Cell Disease (Phase 3)"),
    ("hep-c-sof", "Feld JJ", 2015,
     "Sofosbuvir and velpatasvir for HCV genotype 1, 2, 4, 5, and 6 infection",
     "NCT03100038", "10.1000/sof.2015.5",
     "Sofosbuvir/Velpatasvir in Chronic HCV Genotype 1, 2, 4, 5 and 6"),
]

# hand-written hard negatives per base: (title of the other trial, same first author?, year offset, reason, kind)
NEGATIVES = {
    "ivig-sfn": [
        ("Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised placebo-controlled trial (part II)",
         "part I (unnumbered) vs part II", "part"),
        ("Subcutaneous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised placebo-controlled trial",
         "another drug route (subcutaneous vs intravenous), same authors", "drug"),
        ("Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: an open-label extension study",
         "the extension study, not the randomised trial", "extension"),
    ],
    "ivig-dpn": [
        ("Intravenous immunoglobulin for painful diabetic polyneuropathy: a randomised double-blind pilot trial",
         "the pilot trial before the main trial", "pilot"),
        ("Intravenous immunoglobulin 1 g/kg for painful diabetic polyneuropathy: a randomised double-blind trial",
         "a dose given in one title only", "dose"),
    ],
    "empa-hf": [
        ("Empagliflozin and hospitalisation for heart failure in patients with type 1 diabetes and chronic kidney disease",
         "type 1 vs type 2 diabetes: another population", "population"),
        ("Dapagliflozin and hospitalisation for heart failure in patients with type 2 diabetes and chronic kidney disease",
         "same authors, another drug, same year", "drug"),
        ("Empagliflozin 25 mg and hospitalisation for heart failure in patients with type 2 diabetes and chronic kidney disease",
         "a dose arm named in one title only", "dose"),
    ],
    "asthma-mepo": [
        ("Mepolizumab for severe eosinophilic asthma in children: a randomized, double-blind, placebo-controlled trial",
         "children vs adults", "population"),
        ("Mepolizumab for severe eosinophilic asthma in adults: a randomized, double-blind, placebo-controlled trial (study 2)",
         "the second of two sibling trials", "number"),
    ],
    "stroke-tpa": [
        ("Tenecteplase versus alteplase for acute ischaemic stroke within 24 hours of onset",
         "4.5 vs 24 hours: another time window, another trial", "number"),
        ("Tenecteplase 0.4 mg/kg versus alteplase for acute ischaemic stroke within 4.5 hours of onset",
         "the higher-dose trial (0.4 mg/kg)", "dose"),
    ],
    "paed-otitis": [
        ("Short-course amoxicillin for acute otitis media in adult outpatients: a noninferiority trial",
         "adults vs paediatric outpatients", "population"),
        ("Short-course amoxicillin-clavulanate for acute otitis media in paediatric outpatients: a noninferiority trial",
         "another antibiotic", "drug"),
    ],
    "haem-tranex": [
        ("Tranexamic acid to reduce postpartum haemorrhage after vaginal delivery: a multicentre randomised trial",
         "vaginal vs caesarean delivery: the sibling trial", "population"),
        ("Tranexamic acid to reduce postpartum haemorrhage after caesarean delivery: a multicentre randomised trial. Part 2",
         "part 2 of a two-part report on other trial", "part"),
    ],
    "oeso-ppi": [
        ("Esomeprazole maintenance therapy for healed erosive oesophagitis: a 6-month randomised comparison",
         "6-month vs 12-month comparison (two designs)", "number"),
        ("Esomeprazole 20 mg maintenance therapy for healed erosive oesophagitis: a 12-month randomised comparison",
         "the 20 mg dose trial", "dose"),
    ],
    "tumour-immuno": [
        ("Nivolumab plus ipilimumab in advanced renal cell carcinoma with sarcomatoid tumour features: cohort B",
         "cohort B of a multi-cohort study", "label"),
        ("Nivolumab plus cabozantinib in advanced renal cell carcinoma with sarcomatoid tumour features",
         "another combination partner", "drug"),
    ],
    "anaes-ketamine": [
        ("Intraoperative ketamine and postoperative delirium in older adults undergoing cardiac surgery under general anaesthesia",
         "cardiac vs major surgery: a different population", "population"),
        ("Intraoperative dexmedetomidine and postoperative delirium in older adults undergoing major surgery under general anaesthesia",
         "another drug", "drug"),
    ],
    "beta-hf": [
        ("Beta-blocker withdrawal after myocardial infarction with reduced ejection fraction: an open-label randomised trial",
         "reduced vs preserved ejection fraction", "population"),
        ("Beta-blocker withdrawal after myocardial infarction with preserved ejection fraction: an open-label randomised trial (ABYSS-2)",
         "the numbered sibling trial", "number"),
    ],
    "vitd-falls": [
        ("Monthly low-dose vitamin D supplementation and falls in community-dwelling older women: a randomised trial",
         "low-dose vs high-dose", "dose"),
        ("Monthly high-dose vitamin D supplementation and falls in community-dwelling older men: a randomised trial",
         "men vs women", "population"),
    ],
    "cbt-insomnia": [
        ("Digital cognitive behavioural therapy for chronic insomnia in primary care: a pragmatic randomised controlled trial. Study B",
         "study B of two parallel studies", "label"),
        ("Digital cognitive behavioural therapy for chronic insomnia in primary care: long-term follow-up of a pragmatic randomised controlled trial in adolescents",
         "adolescent follow-up study", "population"),
    ],
    "malaria-art": [
        ("Artesunate-amodiaquine versus artemether-lumefantrine for uncomplicated falciparum malaria in children in Burkina Faso",
         "another country's trial", "population"),
        ("Artesunate-amodiaquine versus dihydroartemisinin-piperaquine for uncomplicated falciparum malaria in children in Mali",
         "another comparator", "drug"),
    ],
    "copd-triple": [
        ("Twice-daily single-inhaler triple therapy versus dual bronchodilation in patients with symptomatic COPD",
         "twice-daily vs once-daily product (another trial)", "dose"),
        ("Once-daily single-inhaler triple therapy versus dual bronchodilation in patients with symptomatic COPD: the IMPACT-2 trial",
         "the numbered sister trial", "number"),
    ],
    "ra-jak": [
        ("Upadacitinib in rheumatoid arthritis with inadequate response to conventional synthetic disease-modifying drugs",
         "conventional vs biologic: another population and trial", "population"),
        ("Baricitinib in rheumatoid arthritis with inadequate response to biologic disease-modifying drugs",
         "same authors, another JAK inhibitor", "drug"),
        ("Upadacitinib in rheumatoid arthritis with inadequate response to biologic disease-modifying drugs: SELECT-BEYOND 2",
         "the second SELECT-BEYOND study", "number"),
    ],
    "sepsis-steroid": [
        ("Hydrocortisone plus fludrocortisone for children with septic shock: a multicentre double-blind trial",
         "children vs adults", "population"),
        ("Hydrocortisone alone for adults with septic shock: a multicentre double-blind trial",
         "no fludrocortisone: the other trial", "drug"),
    ],
    "migraine-cgrp": [
        ("Erenumab for the preventive treatment of chronic migraine after failure of two to four preventives",
         "chronic vs episodic migraine", "population"),
        ("Erenumab for the preventive treatment of episodic migraine after failure of two to four preventives: open-label extension",
         "the extension phase", "extension"),
    ],
    "depress-ket": [
        ("Esketamine nasal spray added to an oral antidepressant in treatment-resistant depression in elderly patients",
         "the trial in elderly patients", "population"),
        ("Esketamine nasal spray added to an oral antidepressant in treatment-resistant depression: TRANSFORM-2",
         "the numbered trial of a programme", "number"),
        ("Esketamine nasal spray added to an oral antidepressant in treatment-resistant depression: TRANSFORM-3",
         "another numbered trial of the programme", "number"),
    ],
    "ckd-finer": [
        ("Finerenone and cardiovascular outcomes in patients with chronic kidney disease and type 2 diabetes",
         "the sister trial with cardiovascular primary outcome", "outcome"),
        ("Finerenone and kidney outcomes in patients with chronic kidney disease and type 1 diabetes",
         "type 1 diabetes", "population"),
    ],
    "obes-sema": [
        ("Once-weekly semaglutide in adults with obesity: a 68-week randomised trial",
         "adults vs adolescents", "population"),
        ("Once-weekly semaglutide 2.4 mg in adolescents with obesity: a 68-week randomised trial",
         "dose stated in one title only (2.4 mg arm)", "dose"),
    ],
    "af-ablation": [
        ("Catheter ablation versus antiarrhythmic drug therapy as first-line treatment of persistent atrial fibrillation",
         "persistent vs paroxysmal", "population"),
        ("Catheter ablation versus antiarrhythmic drug therapy as first-line treatment of paroxysmal atrial fibrillation: phase II",
         "the phase II stage", "phase"),
    ],
    "hiv-dolu": [
        ("Dolutegravir-based versus efavirenz-based antiretroviral therapy in pregnant women with HIV in Uganda",
         "another country's trial", "population"),
        ("Dolutegravir-based versus efavirenz-based antiretroviral therapy in pregnant women with HIV in Kenya: 2019 cohort",
         "a cohort labelled by year", "year"),
    ],
    "tb-short": [
        ("Four-month rifapentine-moxifloxacin regimen for drug-susceptible pulmonary tuberculosis in children",
         "the paediatric trial", "population"),
        ("Six-month rifapentine-moxifloxacin regimen for drug-susceptible pulmonary tuberculosis",
         "six-month vs four-month regimen (written numbers)", "number"),
        ("Four-month rifapentine regimen for drug-susceptible pulmonary tuberculosis",
         "the regimen without moxifloxacin: another arm", "drug"),
    ],
    "psor-bimek": [
        ("Bimekizumab versus adalimumab in plaque psoriasis: a head-to-head randomized trial",
         "another comparator", "drug"),
        ("Bimekizumab versus secukinumab in plaque psoriasis: a head-to-head randomized trial. Part B",
         "part B of the programme", "label"),
    ],
    "glauc-slt": [
        ("Selective laser trabeculoplasty versus eye drops for first-line treatment of ocular hypertension and glaucoma: 6-year outcomes in a second cohort",
         "second cohort", "number"),
        ("Micropulse laser trabeculoplasty versus eye drops for first-line treatment of ocular hypertension and glaucoma",
         "another laser", "drug"),
    ],
    "knee-physio": [
        ("Physiotherapist-led exercise and weight loss for hip osteoarthritis delivered by telehealth",
         "hip vs knee", "population"),
        ("Physiotherapist-led exercise alone for knee osteoarthritis delivered by telehealth",
         "exercise-only arm trial", "drug"),
    ],
    "neo-caffeine": [
        ("Caffeine citrate for apnoea of prematurity in extremely preterm infants: a randomised dose-ranging study",
         "extremely vs late preterm", "population"),
        ("Caffeine citrate 20 mg/kg for apnoea of prematurity in late preterm infants: a randomised dose-ranging study",
         "the 20 mg/kg arm report", "dose"),
    ],
    "crc-asp": [
        ("Aspirin for the prevention of colorectal adenoma recurrence in patients with familial adenomatous polyposis",
         "FAP vs Lynch syndrome", "population"),
        ("Aspirin 600 mg for the prevention of colorectal adenoma recurrence in patients with Lynch syndrome",
         "the dose-finding trial's 600 mg arm", "dose"),
    ],
    "uti-nitro": [
        ("Nitrofurantoin versus fosfomycin for uncomplicated lower urinary tract infection in men",
         "men vs women", "population"),
        ("Nitrofurantoin versus trimethoprim for uncomplicated lower urinary tract infection in women",
         "another comparator", "drug"),
    ],
    "pd-exercise": [
        ("Effectiveness of home-based and remotely supervised aerobic exercise in Parkinson's disease: phase 3",
         "the phase 3 trial after the phase 2", "phase"),
        ("Effectiveness of home-based and remotely supervised resistance exercise in Parkinson's disease",
         "resistance vs aerobic exercise", "drug"),
    ],
    "ms-ocreli": [
        ("Ocrelizumab versus interferon beta-1a in relapsing multiple sclerosis: OPERA II",
         "OPERA II vs OPERA I (unnumbered)", "number"),
        ("Ocrelizumab versus placebo in primary progressive multiple sclerosis",
         "another trial: PPMS, placebo", "population"),
    ],
    "ad-lecan": [
        ("Donanemab in early Alzheimer's disease: an 18-month placebo-controlled trial",
         "another antibody", "drug"),
        ("Lecanemab in preclinical Alzheimer's disease: an 18-month placebo-controlled trial",
         "preclinical vs early", "population"),
    ],
    "gout-febux": [
        ("Long-term cardiovascular safety of febuxostat compared with allopurinol in patients with gout: part I",
         "part I of a two-part report on other cohorts", "part"),
        ("Long-term renal safety of febuxostat compared with allopurinol in patients with gout",
         "another outcome trial", "outcome"),
    ],
    "burn-dress": [
        ("Silver-impregnated dressings versus standard care for partial-thickness burns in adults",
         "adults vs children", "population"),
        ("Honey dressings versus standard care for partial-thickness burns in children",
         "honey vs silver", "drug"),
    ],
    "preg-aspirin": [
        ("Aspirin 150 mg versus placebo in pregnancies at high risk for preterm preeclampsia",
         "dose in one title only", "dose"),
        ("Aspirin versus placebo in twin pregnancies at high risk for preterm preeclampsia",
         "twins: another population", "population"),
    ],
    "covid-dexa": [
        ("Dexamethasone in hospitalised patients with COVID-19 not requiring oxygen",
         "not requiring oxygen: another stratum", "population"),
        ("Hydrocortisone in hospitalised patients with COVID-19 requiring oxygen",
         "another steroid", "drug"),
    ],
    "lbp-tap": [
        ("Effect of pain reprocessing therapy vs placebo and usual care for patients with chronic neck pain",
         "neck vs back pain", "population"),
        ("Effect of mindfulness therapy vs placebo and usual care for patients with chronic back pain",
         "another therapy", "drug"),
    ],
    "sickle-vox": [
        ("A phase 2 randomized trial of voxelotor in sickle cell disease",
         "phase 2 vs phase 3", "phase"),
        ("A phase 3 randomized trial of voxelotor in sickle cell disease in children aged 4 to 11 years",
         "children aged 4 to 11", "population"),
    ],
    "hep-c-sof": [
        ("Sofosbuvir and velpatasvir for HCV genotype 3 infection",
         "genotype 3 vs 1, 2, 4, 5, 6", "number"),
        ("Sofosbuvir and velpatasvir for HCV genotype 1, 2, 4, 5, and 6 infection in patients with decompensated cirrhosis",
         "decompensated cirrhosis: another trial", "population"),
    ],
}

# pairs written whole, for cases that do not fit a base
EXTRA = [
    # hard negatives
    ("Efficacy and safety of tirzepatide in type 2 diabetes (SURPASS-1)",
     "Efficacy and safety of tirzepatide in type 2 diabetes (SURPASS-2)", "Rosenstock J", 2021, 2021,
     "different", "number", "SURPASS-1 vs SURPASS-2"),
    ("Apixaban for extended treatment of venous thromboembolism: AMPLIFY",
     "Apixaban for extended treatment of venous thromboembolism: AMPLIFY-EXT", "Agnelli G", 2013, 2013,
     "different", "extension", "AMPLIFY-EXT is the extension study"),
    ("Dupilumab in moderate-to-severe atopic dermatitis: SOLO 1",
     "Dupilumab in moderate-to-severe atopic dermatitis: SOLO 2", "Simpson EL", 2016, 2016,
     "different", "number", "SOLO 1 and SOLO 2 are twin trials"),
    ("A randomized trial of rituximab in membranous nephropathy: study A",
     "A randomized trial of rituximab in membranous nephropathy: study B", "Fervenza FC", 2019, 2019,
     "different", "label", "study A vs study B"),
    ("Liraglutide in adults with obesity: the SCALE trial, part I",
     "Liraglutide in adults with obesity: the SCALE trial, part II", "Pi-Sunyer X", 2015, 2015,
     "different", "part", "part I vs part II (roman)"),
    ("Phase IIa trial of ixekizumab in psoriatic arthritis",
     "Phase IIb trial of ixekizumab in psoriatic arthritis", "Mease PJ", 2017, 2017,
     "different", "phase", "IIa vs IIb"),
    ("Phase I/II trial of onasemnogene abeparvovec in spinal muscular atrophy type 1",
     "Phase II trial of onasemnogene abeparvovec in spinal muscular atrophy type 1", "Mendell JR", 2017, 2017,
     "different", "phase", "phase I/II vs phase II"),
    ("Pembrolizumab in advanced gastric cancer: cohort 1 of a multicohort phase 2 study",
     "Pembrolizumab in advanced gastric cancer: cohort 3 of a multicohort phase 2 study", "Fuchs CS", 2018, 2018,
     "different", "label", "cohort 1 vs cohort 3"),
    ("Rituximab 375 mg/m2 weekly in immune thrombocytopenia",
     "Rituximab 100 mg weekly in immune thrombocytopenia", "Zaja F", 2010, 2010,
     "different", "dose", "375 mg/m2 vs 100 mg"),
    ("Tofacitinib 5 mg twice daily in ulcerative colitis: maintenance study",
     "Tofacitinib 10 mg twice daily in ulcerative colitis: maintenance study", "Sandborn WJ", 2017, 2017,
     "different", "dose", "5 mg vs 10 mg"),
    ("The 2019 national survey of antibiotic prescribing in primary care",
     "The 2020 national survey of antibiotic prescribing in primary care", "Hayward G", 2020, 2021,
     "different", "year", "two survey rounds"),
    ("Omalizumab for chronic spontaneous urticaria: ASTERIA I",
     "Omalizumab for chronic spontaneous urticaria: ASTERIA II", "Maurer M", 2013, 2013,
     "different", "number", "ASTERIA I vs II"),
    ("Efficacy of a single dose of primaquine in Plasmodium vivax malaria",
     "Efficacy of two doses of primaquine in Plasmodium vivax malaria", "Llanos-Cuentas A", 2014, 2014,
     "different", "number", "single vs two doses (written numbers)"),
    ("A pooled analysis of two randomised trials of rivaroxaban in cancer-associated thrombosis",
     "A pooled analysis of three randomised trials of rivaroxaban in cancer-associated thrombosis", "Young AM", 2020, 2020,
     "different", "number", "two vs three pooled trials"),
    ("Baricitinib in atopic dermatitis: BREEZE-AD1",
     "Baricitinib in atopic dermatitis: BREEZE-AD2", "Simpson EL", 2020, 2020,
     "different", "number", "AD1 vs AD2"),
    ("Secukinumab in ankylosing spondylitis: MEASURE 1 52-week results",
     "Secukinumab in ankylosing spondylitis: MEASURE 2 52-week results", "Baeten D", 2015, 2015,
     "different", "number", "MEASURE 1 vs MEASURE 2"),
    ("Sacubitril-valsartan in heart failure with preserved ejection fraction: the first trial",
     "Sacubitril-valsartan in heart failure with preserved ejection fraction: the second trial", "Solomon SD", 2019, 2019,
     "different", "number", "first vs second (ordinal words)"),
    ("Oral semaglutide in type 2 diabetes: PIONEER 3, Japanese patients",
     "Oral semaglutide in type 2 diabetes: PIONEER 3, Chinese patients", "Yamada Y", 2020, 2020,
     "different", "population", "Japanese vs Chinese patients"),
    ("Ustekinumab as induction therapy for Crohn's disease: UNITI-1",
     "Ustekinumab as induction therapy for Crohn's disease: UNITI-2", "Feagan BG", 2016, 2016,
     "different", "number", "UNITI-1 vs UNITI-2"),
    ("Vedolizumab in ulcerative colitis: GEMINI I",
     "Vedolizumab in Crohn's disease: GEMINI II", "Feagan BG", 2013, 2013,
     "different", "number", "GEMINI I vs II, other diseases"),
    ("Denosumab in postmenopausal osteoporosis: extension study through 10 years",
     "Denosumab in postmenopausal osteoporosis", "Bone HG", 2017, 2017,
     "different", "extension", "the extension study vs the pivotal trial"),
    ("Interim results of a randomised trial of statins in older adults: cohort A",
     "Interim results of a randomised trial of statins in older adults: cohort A/B", "Ridker PM", 2012, 2012,
     "different", "label", "cohort A vs cohorts A/B pooled"),
    # hard positives written whole
    ("Effect of vitamin D3 on depression in adults: the VITAL-DEP randomized clinical trial",
     "Effect of Vitamin D3 on Depression in Adults: The VITAL-DEP Randomized Clinical Trial.", "Okereke OI", 2020, 2020,
     "same", "case", "title case and a final full stop"),
    ("Effect of β-blockers on mortality after myocardial infarction in chronic obstructive pulmonary disease",
     "Effect of beta-blockers on mortality after myocardial infarction in chronic obstructive pulmonary disease",
     "Quint JK", 2019, 2019, "same", "greek", "the Greek letter spelled out"),
    ("[Efficacy of intravenous immunoglobulin in chronic inflammatory demyelinating polyneuropathy: a multicenter study].",
     "Efficacy of intravenous immunoglobulin in chronic inflammatory demyelinating polyneuropathy: a multicenter study",
     "Müller K", 2018, 2018, "same", "translation", "PubMed's bracketed English title of a German article"),
    ("Efficacy of <i>Lactobacillus rhamnosus</i> GG in acute gastroenteritis in children",
     "Efficacy of Lactobacillus rhamnosus GG in acute gastroenteritis in children", "Freedman SB", 2018, 2018,
     "same", "markup", "italic markup in one version"),
    ("Metformin vs. insulin in gestational diabetes: a randomized controlled trial",
     "Metformin versus insulin in gestational diabetes: a randomized controlled trial", "Rowan JA", 2008, 2008,
     "same", "abbreviation", "vs. vs versus"),
    ("Two doses of HPV vaccine in girls aged 9 to 14 years: immunogenicity at 36 months",
     "2 doses of HPV vaccine in girls aged 9 to 14 years: immunogenicity at 36 months", "Dobson SR", 2013, 2013,
     "same", "written-number", "two vs 2"),
    ("Randomised trial of colchicine after myocardial infarction in Phase III",
     "Randomized trial of colchicine after myocardial infarction in phase 3", "Tardif JC", 2019, 2019,
     "same", "roman", "Phase III vs phase 3, British/American"),
    ("Tranexamic acid in traumatic brain injury: CRASH-3 randomised trial",
     "Tranexamic acid in traumatic brain injury (CRASH 3): a randomised, placebo-controlled trial", "Roberts I", 2019, 2019,
     "same", "subtitle", "CRASH-3 vs CRASH 3 and a fuller design subtitle"),
    ("Paediatric haemophilia A prophylaxis with emicizumab: the HAVEN 2 study",
     "Pediatric hemophilia A prophylaxis with emicizumab: the HAVEN 2 study", "Young G", 2019, 2019,
     "same", "spelling", "paediatric/pediatric, haemophilia/hemophilia"),
    ("Oral anticoagulation in elderly patients with atrial fibrillation: a randomised trial",
     "Oral anticoagulation in elderly patients with atrial fibrillation: a randomised trial (abstract)", "Mant J", 2007, 2007,
     "same", "conference", "the conference abstract of the trial"),
]

SPELLING = [("randomised", "randomized"), ("fibre", "fiber"), ("haemorrhage", "hemorrhage"), ("caesarean", "cesarean"),
            ("oesophagitis", "esophagitis"), ("paediatric", "pediatric"), ("tumour", "tumor"), ("anaesthesia", "anesthesia"),
            ("behavioural", "behavioral"), ("ischaemic", "ischemic"), ("hospitalisation", "hospitalization"),
            ("multicentre", "multicenter"), ("apnoea", "apnea"), ("hospitalised", "hospitalized")]
DESIGN_SUBTITLES = [": a randomised controlled trial", ": results of a randomized clinical trial",
                    ": a multicentre, double-blind, randomised, placebo-controlled trial"]


def rec(rid, source, title, authors=(), year=None, doi=None, registry_ids=(), references=(), alt_titles=()):
    return {"record_id": rid, "source": source, "title": title, "authors": list(authors), "year": year, "doi": doi,
            "registry_ids": list(registry_ids), "references": list(references), "alt_titles": list(alt_titles)}


def split_of(key: str) -> str:
    return "dev" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 2 == 0 else "eval"


def _strip_design(title: str) -> str:
    for sep in (": a ", ": an ", ": the "):
        if sep in title:
            return title.split(sep)[0]
    return title


def pairs() -> list[dict]:
    out: list[dict] = []
    pmid = [40000000]

    def nid() -> str:
        pmid[0] += 1
        return f"pubmed:{pmid[0]}"

    def add(key, kind, label, reason, a, b):
        out.append({"id": f"{key}/{kind}/{len(out)}", "split": split_of(key), "label": label, "kind": kind,
                    "reason": reason, "a": a, "b": b})

    for k, (key, author, year, title, nct, doi, reg_title) in enumerate(BASES):
        co = (author, "Smith J", "Lee K")
        main = rec(nid(), "pubmed", title, co, year, doi)
        pid = main["record_id"].split(":")[1]
        # its registry entry, by the NCT id in the publication's DataBankList
        add(key, "registry-nct", "same", "the publication names its registration",
            {**main, "registry_ids": [nct]}, rec(f"ctgov:{nct}", "ctgov", reg_title, registry_ids=[nct]))
        if k % 2 == 0:
            # the registry entry lists the publication; the publication names no trial id
            add(key, "registry-pmid", "same", "the registry entry lists the PMID as its result publication", main,
                rec(f"ctgov:{nct}", "ctgov", reg_title, registry_ids=[nct], references=[pid]))
        else:
            # no ids at all: the registry's brief title is the publication title
            add(key, "registry-title", "same", "registry brief title equals the publication title (case aside)", main,
                rec(f"ctgov:{nct}", "ctgov", reg_title, registry_ids=[nct], alt_titles=[title.rstrip(".").upper()]))
        # an erratum, by title (and sometimes by the DOI of the article it corrects)
        prefix = ("Erratum: ", "Correction to: ", "Corrigendum to \"")[k % 3]
        suffix = "\"" if prefix.endswith("\"") else ""
        add(key, "erratum", "same", "the erratum names the article's title",
            main, rec(nid(), "pubmed", prefix + title + suffix, co, year + (k % 2), doi if k % 4 == 0 else None))
        # a revised / conference version with punctuation and case changes
        variant = title.replace(":", " -").replace(",", "") + "."
        variant = variant[0].lower() + variant[1:] if k % 2 else variant.title()
        add(key, "punctuation-case", "same", "the same title with other punctuation and case (conference version)",
            main, rec(nid(), "pubmed", variant, co[:1], year + (1 if k % 3 == 0 else 0)))
        # British / American spelling
        swapped = title
        for gb, us in SPELLING:
            swapped = swapped.replace(gb, us).replace(gb.capitalize(), us.capitalize())
        if swapped != title:
            add(key, "spelling", "same", "British vs American spelling", main,
                rec(nid(), "pubmed", swapped, co, year))
        else:
            add(key, "translation", "same", "PubMed's bracketed title of the translated version", main,
                rec(nid(), "pubmed", f"[{title}].", co, year))
        # a subtitle added or dropped
        short = _strip_design(title)
        if short != title and len(short) > 45:
            add(key, "subtitle", "same", "the design subtitle dropped", main, rec(nid(), "pubmed", short, co, year))
        else:
            add(key, "subtitle", "same", "a design subtitle added", main,
                rec(nid(), "pubmed", title + DESIGN_SUBTITLES[k % 3], co, year))
        # a secondary report tied by the registry id, whatever its title says
        add(key, "secondary-nct", "same", "secondary analysis naming the same NCT id",
            {**main, "registry_ids": [nct]},
            rec(nid(), "pubmed", f"{_strip_design(title)}: 2-year outcomes of a prespecified secondary analysis", co,
                year + 2, registry_ids=[nct]))
        # hard negatives
        for j, (other, reason, kind) in enumerate(NEGATIVES[key]):
            add(key, kind, "different", reason, main, rec(nid(), "pubmed", other, co, year + (j % 2 == 1 and k % 3 == 0)))
        # two trials with near-identical titles and their own registrations
        add(key, "other-registration", "different", "each names its own registration",
            {**main, "registry_ids": [nct]},
            rec(nid(), "pubmed", title + ".", co, year, registry_ids=[nct[:-2] + f"{(int(nct[-2:]) + 50) % 100:02d}"]))
    for i, (ta, tb, author, ya, yb, label, kind, reason) in enumerate(EXTRA):
        key = f"extra-{i}"
        co = (author, "Smith J")
        add(key, kind, label, reason, rec(nid(), "pubmed", ta, co, ya), rec(nid(), "pubmed", tb, co, yb))
    return out


def main() -> None:
    rows = pairs()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    n = {s: sum(r["split"] == s for r in rows) for s in ("dev", "eval")}
    same = sum(r["label"] == "same" for r in rows)
    print(f"wrote {len(rows)} pairs ({same} same, {len(rows) - same} different; dev {n['dev']}, eval {n['eval']}) to {OUT}")


if __name__ == "__main__":
    main()
