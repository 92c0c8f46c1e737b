//! The vocabulary of the name check: salt words, words that name no drug,
//! abbreviations, and common brands with their ingredients. Tables only.

/// Salt and ester words: they tell forms of one drug apart, never two drugs.
#[rustfmt::skip]
pub(super) const SALTS: &[&str] = &[
    "hydrochloride", "hcl", "dihydrochloride", "hydrobromide", "hbr", "sodium", "disodium",
    "potassium", "calcium", "magnesium", "maleate", "besylate", "besilate", "succinate",
    "tartrate", "bitartrate", "mesylate", "sulfate", "sulphate", "citrate", "acetate",
    "fumarate", "phosphate", "chloride", "bromide", "carbonate", "nitrate", "mononitrate",
    "hydrate", "monohydrate", "dihydrate", "trihydrate", "anhydrous", "hyclate", "propionate",
    "dipropionate", "valerate", "furoate", "xinafoate", "tromethamine", "gluconate",
    "lactate", "oxalate", "pamoate", "stearate", "estolate", "ethylsuccinate", "medoxomil",
    "axetil", "cilexetil", "base", "free", "hemihydrate", "sesquihydrate", "pentahydrate",
    "hexahydrate", "heptahydrate", "monobasic", "dibasic", "tribasic",
];

/// Words that name no drug: fillers; every word of the FDA directory's
/// dose forms, routes and strength units (2019); and the abbreviations
/// prescribers use for them.
#[rustfmt::skip]
pub(super) const STOP: &[&str] = &[
    // Fillers.
    "and", "with", "the", "for", "per", "each", "take", "daily", "hour", "hours", "day",
    "mouth", "medication", "medicine", "drug", "product", "generic", "brand", "unknown",
    "other", "acid", "not", "applicable",
    // FDA dose forms and routes.
    "aerosol", "arterial", "articular", "augmented", "auricular", "bar", "buccal", "capsule",
    "cellular", "chewable", "chewing", "cloth", "coated", "complex", "concentrate",
    "conjunctival", "cream", "crystal", "cutaneous", "delayed", "dental", "dentifrice",
    "device", "disc", "disintegrating", "douche", "dressing", "drops", "effervescent",
    "elixir", "emulsion", "endosinusial", "endotracheal", "enema", "enteral", "epidural",
    "extended", "extracorporeal", "extract", "filled", "film", "foam", "forming", "gas",
    "gel", "gelatin", "globule", "granule", "gum", "hemodialysis", "implant", "infiltration",
    "inhalant", "inhalation", "injectable", "injection", "insert", "interstitial", "intra",
    "intrabronchial", "intrabursal", "intracanalicular", "intracardiac", "intracaudal",
    "intracavernous", "intracavitary", "intracoronary", "intradermal", "intragastric",
    "intralesional", "intralymphatic", "intramedullary", "intramuscular", "intraocular",
    "intraperitoneal", "intrapleural", "intrasinal", "intraspinal", "intrasynovial",
    "intrathecal", "intratumor", "intratympanic", "intrauterine", "intravascular",
    "intravenous", "intraventricular", "intravesical", "intravitreal", "irrigant",
    "irrigation", "jelly", "kit", "liniment", "lipid", "liposomal", "lipstick", "liquid",
    "lotion", "lozenge", "lyophilized", "metered", "mouthwash", "multilayer", "nasal",
    "nasogastric", "occlusive", "oil", "ointment", "ophthalmic", "oral", "orally",
    "oropharyngeal", "otic", "parenteral", "paste", "pastille", "patch", "pellet", "pellets",
    "percutaneous", "perineural", "periodontal", "pill", "plaster", "poultice", "powder",
    "rectal", "release", "respiratory", "retrobulbar", "ring", "rinse", "salve", "shampoo",
    "sheet", "soap", "soft", "soluble", "solution", "spray", "sponge", "stick", "strip",
    "subarachnoid", "subconjunctival", "subcutaneous", "subgingival", "sublingual",
    "submucosal", "sugar", "suppository", "suspension", "swab", "syrup", "tablet", "tape",
    "technique", "tincture", "tissue", "topical", "transdermal", "transmucosal", "troche",
    "ureteral", "urethral", "vaginal", "wafer",
    // FDA strength units.
    "amb", "arb", "bau", "cfu", "mci", "meq", "nmol", "pfu", "pnu", "tcid", "uci", "umol",
    "usp", "unit", "units", "mcg",
    // As prescribers write them.
    "tab", "tabs", "tablets", "cap", "caps", "capsules", "inj", "susp", "soln", "sol",
    "supp", "oint", "crm", "inh", "neb", "nebulizer", "inhaler", "actuation", "actuat",
    "puff", "puffs", "prefilled", "syringe", "cartridge", "pen", "vial", "packet", "pack",
    "dose", "doses", "xl", "xr", "sr", "er", "dr", "cr", "ec", "odt", "hfa",
];

/// Abbreviations and international names, read as the name they stand for.
#[rustfmt::skip]
pub(super) const ALIASES: &[(&str, &[&str])] = &[
    ("hctz", &["hydrochlorothiazide"]), ("apap", &["acetaminophen"]), ("asa", &["aspirin"]),
    ("paracetamol", &["acetaminophen"]), ("salbutamol", &["albuterol"]),
    ("adrenaline", &["epinephrine"]), ("frusemide", &["furosemide"]),
    ("lignocaine", &["lidocaine"]), ("tmp", &["trimethoprim"]), ("smx", &["sulfamethoxazole"]),
    ("mtx", &["methotrexate"]), ("ntg", &["nitroglycerin"]), ("hcq", &["hydroxychloroquine"]),
    ("pcn", &["penicillin"]), ("mso4", &["morphine"]), ("kcl", &["potassium", "chloride"]),
    ("nacl", &["sodium", "chloride"]), ("nph", &["isophane", "human"]),
];

/// Common US brands and the active ingredients they name: a document may
/// give the brand that was prescribed over the NDC of the generic that was
/// dispensed. The dictionary answers this for every brand it holds
/// (`DrugDictionary::brand_substances`); this table is the fallback for a
/// dictionary that lacks the brand (the sample dictionary, a brand since
/// withdrawn). An entry can only add a match, never a flag, so a missing
/// brand costs a flag a clinician accepts and a wrong one a missed flag.
#[rustfmt::skip]
pub(super) const BRANDS: &[(&str, &[&str])] = &[
    ("lipitor", &["atorvastatin"]), ("zocor", &["simvastatin"]), ("crestor", &["rosuvastatin"]),
    ("pravachol", &["pravastatin"]), ("norvasc", &["amlodipine"]), ("prinivil", &["lisinopril"]),
    ("zestril", &["lisinopril"]), ("vasotec", &["enalapril"]), ("altace", &["ramipril"]),
    ("cozaar", &["losartan"]), ("hyzaar", &["losartan", "hydrochlorothiazide"]),
    ("diovan", &["valsartan"]), ("benicar", &["olmesartan"]), ("toprol", &["metoprolol"]),
    ("lopressor", &["metoprolol"]), ("tenormin", &["atenolol"]), ("coreg", &["carvedilol"]),
    ("lasix", &["furosemide"]), ("microzide", &["hydrochlorothiazide"]),
    ("aldactone", &["spironolactone"]), ("catapres", &["clonidine"]), ("cardizem", &["diltiazem"]),
    ("calan", &["verapamil"]), ("cardura", &["doxazosin"]), ("lanoxin", &["digoxin"]),
    ("imdur", &["isosorbide"]), ("nitrostat", &["nitroglycerin"]), ("glucophage", &["metformin"]),
    ("glucotrol", &["glipizide"]), ("amaryl", &["glimepiride"]), ("januvia", &["sitagliptin"]),
    ("synthroid", &["levothyroxine"]), ("levoxyl", &["levothyroxine"]),
    ("unithroid", &["levothyroxine"]), ("coumadin", &["warfarin"]), ("jantoven", &["warfarin"]),
    ("plavix", &["clopidogrel"]), ("eliquis", &["apixaban"]), ("xarelto", &["rivaroxaban"]),
    ("prozac", &["fluoxetine"]), ("sarafem", &["fluoxetine"]), ("zoloft", &["sertraline"]),
    ("paxil", &["paroxetine"]), ("celexa", &["citalopram"]), ("lexapro", &["escitalopram"]),
    ("wellbutrin", &["bupropion"]), ("effexor", &["venlafaxine"]), ("cymbalta", &["duloxetine"]),
    ("desyrel", &["trazodone"]), ("xanax", &["alprazolam"]), ("ativan", &["lorazepam"]),
    ("valium", &["diazepam"]), ("klonopin", &["clonazepam"]), ("ambien", &["zolpidem"]),
    ("neurontin", &["gabapentin"]), ("lyrica", &["pregabalin"]), ("ultram", &["tramadol"]),
    ("motrin", &["ibuprofen"]), ("advil", &["ibuprofen"]), ("aleve", &["naproxen"]),
    ("naprosyn", &["naproxen"]), ("tylenol", &["acetaminophen"]), ("mobic", &["meloxicam"]),
    ("celebrex", &["celecoxib"]), ("prilosec", &["omeprazole"]), ("nexium", &["esomeprazole"]),
    ("protonix", &["pantoprazole"]), ("pepcid", &["famotidine"]), ("zantac", &["ranitidine"]),
    ("singulair", &["montelukast"]), ("proventil", &["albuterol"]), ("ventolin", &["albuterol"]),
    ("flonase", &["fluticasone"]), ("zyrtec", &["cetirizine"]), ("claritin", &["loratadine"]),
    ("allegra", &["fexofenadine"]), ("deltasone", &["prednisone"]),
    ("medrol", &["methylprednisolone"]), ("amoxil", &["amoxicillin"]),
    ("augmentin", &["amoxicillin", "clavulanate"]), ("zithromax", &["azithromycin"]),
    ("cipro", &["ciprofloxacin"]), ("levaquin", &["levofloxacin"]), ("keflex", &["cephalexin"]),
    ("bactrim", &["sulfamethoxazole", "trimethoprim"]),
    ("septra", &["sulfamethoxazole", "trimethoprim"]), ("flagyl", &["metronidazole"]),
    ("diflucan", &["fluconazole"]), ("valtrex", &["valacyclovir"]), ("zovirax", &["acyclovir"]),
    ("flomax", &["tamsulosin"]), ("proscar", &["finasteride"]), ("viagra", &["sildenafil"]),
    ("cialis", &["tadalafil"]), ("dilantin", &["phenytoin"]), ("depakote", &["divalproex"]),
    ("tegretol", &["carbamazepine"]), ("lamictal", &["lamotrigine"]),
    ("keppra", &["levetiracetam"]), ("topamax", &["topiramate"]), ("seroquel", &["quetiapine"]),
    ("risperdal", &["risperidone"]), ("zyprexa", &["olanzapine"]), ("abilify", &["aripiprazole"]),
    ("adderall", &["amphetamine", "dextroamphetamine"]), ("ritalin", &["methylphenidate"]),
    ("aricept", &["donepezil"]), ("namenda", &["memantine"]), ("zyloprim", &["allopurinol"]),
    ("colcrys", &["colchicine"]), ("fosamax", &["alendronate"]),
    // Insulins by their kind: "insulin" alone never matches two kinds (`INSULINS`).
    ("lantus", &["insulin", "glargine"]), ("basaglar", &["insulin", "glargine"]),
    ("toujeo", &["insulin", "glargine"]), ("semglee", &["insulin", "glargine"]),
    ("rezvoglar", &["insulin", "glargine"]), ("humalog", &["insulin", "lispro"]),
    ("admelog", &["insulin", "lispro"]), ("lyumjev", &["insulin", "lispro"]),
    ("novolog", &["insulin", "aspart"]), ("fiasp", &["insulin", "aspart"]),
    ("apidra", &["insulin", "glulisine"]), ("levemir", &["insulin", "detemir"]),
    ("tresiba", &["insulin", "degludec"]), ("humulin", &["insulin", "human"]),
    ("novolin", &["insulin", "human"]), ("afrezza", &["insulin", "human"]),
    ("percocet", &["oxycodone", "acetaminophen"]), ("oxycontin", &["oxycodone"]),
    ("vicodin", &["hydrocodone", "acetaminophen"]), ("norco", &["hydrocodone", "acetaminophen"]),
    ("flexeril", &["cyclobenzaprine"]), ("plaquenil", &["hydroxychloroquine"]),
    ("zofran", &["ondansetron"]), ("phenergan", &["promethazine"]), ("reglan", &["metoclopramide"]),
    ("ditropan", &["oxybutynin"]), ("detrol", &["tolterodine"]), ("myleran", &["busulfan"]),
];

/// The words that tell one insulin from another (the FDA's nonproprietary
/// names: insulin lispro, insulin isophane human…; "regular" is left out,
/// so "insulin regular" names no kind and matches any insulin). Two texts that each name
/// a kind of insulin match only through a kind in common, never through the
/// word "insulin".
#[rustfmt::skip]
pub(super) const INSULINS: &[&str] = &[
    "lispro", "aspart", "glargine", "detemir", "degludec", "glulisine", "isophane", "human",
];
