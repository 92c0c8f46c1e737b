//! The default `[import] therapeutic_class_exclusions`: Established
//! Pharmacologic Classes whose members are taken together by design, so two
//! items sharing one are no therapeutic duplicate.
//!
//! Spelled exactly as the FDA writes them in the PHARM_CLASSES column of the
//! NDC directory's `product.txt` (checked against the snapshot of
//! 2019-04-29, `target/fda-2019`, see `.ci/run`). Deliberately not here:
//! the vitamin *analogs* and antagonists that are drugs in their own right
//! (`Vitamin D3 Analog [EPC]`: calcitriol and paricalcitol together is a
//! duplicate; `Vitamin K Antagonist [EPC]` is warfarin), folate analogs
//! (leucovorin), `Nicotinic Acid [EPC]` (niacin as a lipid drug) and
//! parenteral iron.

/// Vitamins, electrolytes and minerals, vaccines, and allergenic extracts
/// (immunotherapy combines several extracts of one class).
pub const DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS: &[&str] = &[
    // Vitamins.
    "Vitamin A [EPC]",
    "Vitamin B6 Analog [EPC]",
    "Vitamin B12 [EPC]",
    "Vitamin C [EPC]",
    "Vitamin D [EPC]",
    "Provitamin D2 Compound [EPC]",
    "Vitamin K [EPC]",
    // Electrolytes and minerals.
    "Potassium Salt [EPC]",
    "Calcium [EPC]",
    // Vaccines: a schedule gives several at one visit.
    "Inactivated Bordetella Pertussis Vaccine [EPC]",
    "Inactivated Clostridium Tetani Vaccine [EPC]",
    "Inactivated Corynebacterium Diphtheriae Vaccine [EPC]",
    "Inactivated Haemophilus Influenzae B Vaccine [EPC]",
    "Inactivated Hepatitis A Virus Vaccine [EPC]",
    "Inactivated Hepatitis B Virus Vaccine [EPC]",
    "Inactivated Human Papillomavirus Vaccine [EPC]",
    "Inactivated Influenza A Virus Vaccine [EPC]",
    "Inactivated Influenza B Virus Vaccine [EPC]",
    "Inactivated Japanese Encephalitis Virus Vaccine [EPC]",
    "Inactivated Meningococcal Vaccine [EPC]",
    "Inactivated Pneumococcal Vaccine [EPC]",
    "Inactivated Poliovirus Vaccine [EPC]",
    "Inactivated Salmonella Typhi Vaccine [EPC]",
    "Live Attenuated Bacillus Anthracis Vaccine [EPC]",
    "Live Attenuated Bacillus Calmette-Guerin Vaccine [EPC]",
    "Live Attenuated Herpes Zoster Virus Vaccine [EPC]",
    "Live Attenuated Measles Virus Vaccine [EPC]",
    "Live Attenuated Mumps Virus Vaccine [EPC]",
    "Live Attenuated Rubella Virus Vaccine [EPC]",
    "Live Attenuated Salmonella Typhi Vaccine [EPC]",
    "Live Attenuated Varicella Zoster Virus Vaccine [EPC]",
    "Live Attenuated Yellow Fever Virus Vaccine [EPC]",
    "Live Rotavirus Vaccine [EPC]",
    "Live Vaccinia Virus Vaccine [EPC]",
    // Allergenic extracts.
    "Non-Standardized Animal Dander Allergenic Extract [EPC]",
    "Non-Standardized Animal Hair Allergenic Extract [EPC]",
    "Non-Standardized Animal Skin Allergenic Extract [EPC]",
    "Non-Standardized Bacterial Allergenic Extract [EPC]",
    "Non-Standardized Feather Allergenic Extract [EPC]",
    "Non-Standardized Food Allergenic Extract [EPC]",
    "Non-Standardized Fungal Allergenic Extract [EPC]",
    "Non-Standardized House Dust Allergenic Extract [EPC]",
    "Non-Standardized Insect Allergenic Extract [EPC]",
    "Non-Standardized Insect Venom Allergenic Extract [EPC]",
    "Non-Standardized Plant Allergenic Extract [EPC]",
    "Non-Standardized Plant Fiber Allergenic Extract [EPC]",
    "Non-Standardized Pollen Allergenic Extract [EPC]",
    "Standardized Animal Hair Allergenic Extract [EPC]",
    "Standardized Animal Skin Allergenic Extract [EPC]",
    "Standardized Insect Allergenic Extract [EPC]",
    "Standardized Insect Venom Allergenic Extract [EPC]",
    "Standardized Pollen Allergenic Extract [EPC]",
];
