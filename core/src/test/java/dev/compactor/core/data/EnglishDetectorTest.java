package dev.compactor.core.data;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EnglishDetectorTest {

  @Test
  void acceptsEnglishProse() {
    assertTrue(
        EnglishDetector.isEnglish(
            "Mr President, I would like to thank the rapporteur for the work that has been done on"
                + " this report, which is of great importance for the future of our Union and for"
                + " the citizens we represent."));
  }

  @Test
  void refusesOtherEuropeanLanguages() {
    String[] others = {
      "Herr Präsident, ich möchte dem Berichterstatter für die Arbeit danken, die an diesem"
          + " Bericht geleistet wurde, der für die Zukunft unserer Union und für die Bürger von"
          + " großer Bedeutung ist.",
      "Monsieur le Président, je voudrais remercier le rapporteur pour le travail accompli sur ce"
          + " rapport, qui est d'une grande importance pour l'avenir de notre Union et pour les"
          + " citoyens que nous représentons.",
      "Signor Presidente, desidero ringraziare il relatore per il lavoro svolto su questa"
          + " relazione, che è di grande importanza per il futuro della nostra Unione e per i"
          + " cittadini che rappresentiamo.",
      "Herr talman, jag vill tacka föredraganden för det arbete som har gjorts med detta"
          + " betänkande, som är av stor betydelse för vår unions framtid och för de medborgare vi"
          + " företräder.",
      "Señor Presidente, quisiera dar las gracias al ponente por el trabajo realizado en este"
          + " informe, que es de gran importancia para el futuro de nuestra Unión y para los"
          + " ciudadanos que representamos."
    };
    for (String text : others) {
      assertFalse(EnglishDetector.isEnglish(text), text);
    }
  }

  @Test
  void refusesTextTooShortToJudge() {
    assertFalse(EnglishDetector.isEnglish("the of and to in is"));
  }
}
